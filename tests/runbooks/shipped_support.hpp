// Running shipped runbooks for real from tests: a finished run's outcome and audit records, and
// a database of the test cluster loaded with a shipped fixture.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "engine/db/connection.hpp"
#include "engine/shell/process.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/pg_fixture.hpp"

namespace rb::testing::shipped {

using json = nlohmann::json;

inline const std::string k_shipped = std::string(RUNBOOK_SOURCE_DIR) + "/runbooks";

/// One finished run: the CLI's result, its --json outcome and its audit records.
struct run_result {
  rb::shell::process_result proc;
  json outcome;
  std::vector<json> records;

  std::string status() const { return outcome.value("status", "?"); }
  std::string describe() const { return proc.out + "\n" + proc.err; }

  std::vector<json> events(const std::string& event, const std::string& step = "") const {
    std::vector<json> out;
    for (const auto& r : records)
      if (r.value("event", "") == event && (step.empty() || r.value("step", "") == step)) out.push_back(r);
    return out;
  }
  /// The fields of the note with this message (null if there is none).
  json note(const std::string& message) const {
    for (const auto& r : events("note"))
      if (r.value("message", "") == message) return r.value("fields", json());
    return json();
  }
  /// The step.end record of this step (of this phase, when given).
  json step_end(const std::string& step, const std::string& phase = "") const {
    for (const auto& r : events("step.end", step))
      if (phase.empty() || r.value("phase", "") == phase) return r;
    return json();
  }
  json phase_end(const std::string& phase) const {
    for (const auto& r : events("phase.end"))
      if (r.value("phase", "") == phase) return r;
    return json();
  }
  bool logged(const std::string& text) const {
    for (const auto& r : events("log"))
      if (r.value("message", "").find(text) != std::string::npos) return true;
    return false;
  }
};

/// `runbook run NAME --yes --json args...` in `cli`, against --sandbox or `dsn`.
inline run_result run(cli_sandbox& cli, const std::string& name, std::vector<std::string> args = {},
                      const std::string& dsn = "") {
  std::vector<std::string> argv{"run", name, "--yes", "--json"};
  if (!dsn.empty()) argv.insert(argv.end(), {"--dsn", dsn});
  else argv.push_back("--sandbox");
  argv.insert(argv.end(), args.begin(), args.end());
  run_result r;
  r.proc = cli.run(argv, {{"RUNBOOK_PATH", k_shipped}});
  r.outcome = json::parse(r.proc.out, nullptr, false);
  if (r.outcome.is_discarded() || !r.outcome.is_object()) r.outcome = json::object();
  std::string id = r.outcome.value("run", "");
  for (auto& rec : cli.records())
    if (rec.value("run", "") == id) r.records.push_back(rec);
  return r;
}

/// A database of the test cluster with a shipped fixture loaded (and `extra_sql` after it).
struct fixture_db {
  std::string dsn, name;

  explicit fixture_db(const std::string& fixture, const std::string& extra_sql = "",
                      rb::db::cluster& cluster = shared_cluster()) {
    dsn = fresh_database(cluster, "seed");
    name = dsn.substr(dsn.find("dbname=") + 7);
    name = name.substr(0, name.find(' '));
    cluster.run_sql_file(k_shipped + "/" + fixture, name);
    if (!extra_sql.empty()) cluster.run_sql(extra_sql, name);
  }

  /// The first value of the first row, as text ("" for none or NULL).
  std::string scalar(const std::string& sql) const {
    rb::db::connection c({dsn, "test", "seed_test"});
    auto r = c.exec(sql);
    return r.rows.empty() || r.rows[0].empty() || r.rows[0][0].null ? "" : r.rows[0][0].text;
  }

  /// A checksum of every row of these tables, in one string.
  std::string rows_of(const std::vector<std::string>& tables) const {
    std::string out;
    for (const auto& t : tables)
      out += t + "=" + scalar("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM " + t + " t") + "\n";
    return out;
  }
};

}  // namespace rb::testing::shipped
