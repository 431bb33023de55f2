// Seed 003's rollback decision tree end to end: the shipped migration.organizations_import_fix
// with its example config, run through the real session (executor, audit log, alert channels,
// incidents) against a real PostgreSQL whose import metrics the test changes at fake times. A
// clock of the test's own moves only when the run sleeps, and runs the test's changes to the
// database (UPDATE import_monitoring ...) when their time has come: a 24-hour watch takes
// seconds. Each band of the tree is provoked once: immediate, conditional (with a variant
// that recovers inside the investigation's window), performance.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <mutex>
#include <sstream>

#include "bindings/config.hpp"
#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/db/connection.hpp"
#include "engine/incident/store.hpp"
#include "engine/run/params.hpp"
#include "engine/run/session.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/runbook_test.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using std::chrono::milliseconds;

const std::string k_dir = std::string(RUNBOOK_SOURCE_DIR) + "/runbooks/migration";
// The real time a 24-hour watch may take: about 15 s in a release build (2,880 samples of 7
// SQL metrics); sanitizers make everything two to three times slower.
#ifdef __SANITIZE_ADDRESS__
constexpr auto k_day_budget = std::chrono::seconds(150);
#else
constexpr auto k_day_budget = std::chrono::seconds(60);
#endif
constexpr const char* k_name = "migration.organizations_import_fix";

/// A clock that moves only when the run sleeps, and then runs the changes scheduled for the
/// time it reaches (in the sleeping thread, in order), before the sleeper looks at anything.
class scripted_clock final : public rb::clock {
 public:
  /// Runs `change` once the clock reaches `when` after its start.
  void at(milliseconds when, std::function<void()> change) {
    std::lock_guard lock(m_mutex);
    m_changes.emplace(when, std::move(change));
  }
  std::chrono::steady_clock::time_point now() const override { return m_start + milliseconds(m_offset.load()); }
  std::chrono::system_clock::time_point wall_now() const override { return m_wall + milliseconds(m_offset.load()); }
  void sleep_for(milliseconds d) override {
    std::lock_guard lock(m_mutex);
    m_offset += d.count();
    while (!m_changes.empty() && m_changes.begin()->first.count() <= m_offset) {
      auto change = std::move(m_changes.begin()->second);
      m_changes.erase(m_changes.begin());
      change();
    }
  }
  using rb::clock::sleep_for;
  milliseconds elapsed() const { return milliseconds(m_offset.load()); }
  std::chrono::system_clock::time_point wall_at(milliseconds offset) const { return m_wall + offset; }

 private:
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
  // Whole milliseconds, as the journal writes times.
  std::chrono::system_clock::time_point m_wall =
      std::chrono::time_point_cast<milliseconds>(std::chrono::system_clock::now());
  std::atomic<long long> m_offset{0};
  std::mutex m_mutex;
  std::multimap<milliseconds, std::function<void()>> m_changes;
};

class Seed003 : public ::testing::Test {
 protected:
  rb::testing::temp_dir dir{"rb-seed003"};
  std::string dsn, dbname;
  std::unique_ptr<rb::db::connection> db;  // the test's own session: the importer, the DBA
  scripted_clock clk;
  std::ostringstream output;
  rb::run::reporter out{output, rb::run::reporter_options{}};
  rb::testing::no_confirm confirm;
  std::vector<json> recs;

  // A server of its own: the runbook's preflight refuses to build indexes while any session of
  // the server waits on a lock, as other tests' sessions may.
  void SetUp() override {
    rb::db::cluster& cluster = rb::testing::private_cluster();
    dsn = rb::testing::fresh_database(cluster, "seed003");
    dbname = dsn.substr(dsn.find("dbname=") + 7);
    dbname = dbname.substr(0, dbname.find(' '));
    cluster.run_sql_file(k_dir + "/organizations_import_fix.sql", dbname);
    // Every change of the maintenance flag, in order: what the importer would have seen.
    cluster.run_sql(R"sql(
      CREATE TABLE flag_history (seq serial PRIMARY KEY, import_enabled boolean, maintenance_message text);
      CREATE FUNCTION flag_changed() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO flag_history (import_enabled, maintenance_message) VALUES (NEW.import_enabled, NEW.maintenance_message);
        RETURN NEW;
      END $$;
      CREATE TRIGGER flag_changed AFTER UPDATE ON system_settings FOR EACH ROW EXECUTE FUNCTION flag_changed();)sql",
                    dbname);
    db = std::make_unique<rb::db::connection>(rb::db::connection_options{dsn, "test", "seed003_test"});
  }

  /// Runs the shipped runbook with its example config and these params, as `runbook run
  /// --dsn` would; keeps its audit records.
  rb::run::run_outcome run(std::map<std::string, std::string> params = {}) {
    auto sb = rb::lua::make_sandbox({});
    rb::run::config cfg = rb::lua::load_config(*sb, k_dir + "/organizations_import_fix.config");
    rb::run::runbook_def book = rb::lua::load_runbook(*sb, k_dir + "/organizations_import_fix.lua", k_name);
    rb::run::session_options so;
    so.audit_file = dir.path() / "audit.jsonl";
    so.database.dsn = dsn;
    rb::run::run_outcome o;
    {
      rb::run::session s(book, cfg, so, out, confirm, clk);
      rb::run::run_options opts;
      opts.params = rb::run::resolve_params(book, params);
      opts.yes = true;
      o = s.run(opts);
    }
    recs.clear();
    rb::audit::for_each_record(so.audit_file, [&](const json& r) { recs.push_back(r); });
    return o;
  }

  std::vector<json> events(const std::string& event) const {
    std::vector<json> r;
    for (const auto& rec : recs)
      if (rec.value("event", "") == event) r.push_back(rec);
    return r;
  }
  /// The watch's decisions as "elapsed trigger: decision [action]".
  std::vector<std::string> decisions() const {
    std::vector<std::string> r;
    for (const auto& d : events("decision")) {
      long long ms = d.value("elapsed_ms", 0LL);
      std::string at = std::to_string(ms / 60'000) + "m" + (ms % 60'000 ? std::to_string(ms % 60'000 / 1000) + "s" : "");
      std::string line = at + " " + d.value("trigger", "") + ": " + d.value("decision", "");
      if (d.contains("action")) line += " [" + d.value("action", "") + "]";
      r.push_back(line);
    }
    return r;
  }
  std::string scalar(const std::string& sql) {
    auto r = db->exec(sql);
    return r.rows.empty() || r.rows[0].empty() || r.rows[0][0].null ? "NULL" : r.rows[0][0].text;
  }
  /// The maintenance flag's changes, "false:Import system temporarily unavailable|true:NULL".
  std::string flag_history() {
    return scalar("SELECT coalesce(string_agg(import_enabled::text || ':' || coalesce(maintenance_message, 'NULL'), "
                  "'|' ORDER BY seq), '') FROM flag_history");
  }
  std::string flag() {
    return scalar("SELECT import_enabled::text || ':' || coalesce(maintenance_message, 'NULL') FROM system_settings "
                  "WHERE setting_key = 'import_config'");
  }
  std::string indexes() {
    return scalar("SELECT coalesce(string_agg(indexname, ',' ORDER BY indexname), '') FROM pg_indexes "
                  "WHERE tablename = 'organizations' AND indexname IN ('organizations_exact_name_type_active', "
                  "'unique_organization_name_type_ci')");
  }
  /// The importer's batches, all of them recent: this share of records succeeds, the rest fail
  /// with `error`.
  void imports(double success, const std::string& error = "") {
    int ok = static_cast<int>(success * 100 + 0.5);
    db->exec("UPDATE import_monitoring SET records_successful = " + std::to_string(ok) +
             ", records_failed = " + std::to_string(100 - ok) + ", error_message = " +
             (error.empty() ? std::string("NULL") : "'" + error + "'"));
  }
  std::vector<rb::incident::incident> incidents() {
    rb::audit::log journal(dir.path() / "audit.jsonl");
    rb::incident::store store(journal);
    store.refresh();
    std::vector<rb::incident::incident> r;
    for (const auto* i : store.list()) r.push_back(*i);
    return r;
  }
  std::string describe() const { return output.str(); }
};

TEST_F(Seed003, ImmediateBandRollsBackWhenAConstraintGoesMissingBlockingImportsUntilTheIndexesAreGone) {
  // Minute 2: someone drops the case-insensitive index.
  clk.at(2min, [&] { db->exec("DROP INDEX unique_organization_name_type_ci"); });
  rb::run::run_outcome o = run({{"watch_for", "1h"}});

  EXPECT_EQ(o.status, "rolled_back") << describe();
  EXPECT_EQ(o.exit_code(), 1);
  EXPECT_EQ(decisions(), std::vector<std::string>{"2m critical constraint missing: fired [rollback]"});
  auto d = events("decision").at(0);
  EXPECT_EQ(d["condition"], "constraint_missing");
  EXPECT_EQ(d["values"]["constraint_missing"], true);
  EXPECT_EQ(d["ends"], "rollback");
  EXPECT_EQ(clk.elapsed(), 2min) << "the watch ended at the sample that saw it";

  // The rollback path in the plan's order: imports blocked (phase 1), the indexes dropped
  // (phase 2), imports back on (phase 3).
  std::vector<std::string> undone;
  for (const auto& r : events("rollback.end")) undone.push_back(r.value("step", "") + ":" + r.value("status", ""));
  EXPECT_EQ(undone, (std::vector<std::string>{"imports can be blocked:succeeded",
                                              "case-insensitive unique index:succeeded",
                                              "exact-match unique index:succeeded", "imports enabled:succeeded"}))
      << describe();
  EXPECT_EQ(flag_history(), "false:Import system temporarily unavailable|true:NULL");
  EXPECT_EQ(flag(), "true:NULL");
  EXPECT_EQ(indexes(), "");

  // The rollback notification went out on the team's channel, naming the trigger.
  bool notified = false;
  for (const auto& a : events("alert.sent"))
    if (a.value("channel", "") == "team" && a.value("severity", "") == "critical") notified = true;
  EXPECT_TRUE(notified) << describe();
  EXPECT_NE(describe().find("ROLLBACK EXECUTED: Organizations Import Fix"), std::string::npos) << describe();
  EXPECT_NE(describe().find("trigger 'critical constraint missing'"), std::string::npos) << describe();

  // The rolled-back run opened an incident under the plan's chain, at its first level.
  auto inc = incidents();
  ASSERT_EQ(inc.size(), 1u);
  EXPECT_EQ(inc[0].runbook, k_name);
  EXPECT_EQ(inc[0].cause, "run failed");
  EXPECT_EQ(inc[0].level, 1);
  EXPECT_TRUE(inc[0].is_open());
  EXPECT_EQ(inc[0].source_run, o.run_id);
  ASSERT_EQ(inc[0].escalation.levels.size(), 3u);
}

TEST_F(Seed003, ConditionalBandInvestigatesALowSuccessRateForTenMinutesThenRollsBack) {
  // Minute 10: 60% of records fail on timeouts (a known warning) and stay failing.
  clk.at(10min, [&] { imports(0.4, "Import timeout after 30s"); });
  rb::run::run_outcome o = run({{"watch_for", "2h"}});

  EXPECT_EQ(o.status, "rolled_back") << describe();
  EXPECT_EQ(decisions(), (std::vector<std::string>{
                             "10m success rate under 50%: investigation_started",
                             "10m30s error rate over 25%, known errors: fired [alert{severity=warning, summary=CRITICAL: "
                             "Migration Issue Requires Immediate Attention\n- Problem: Organizations Import Fix: more "
                             "than 25% of imported records fail, with the plan's known warnings\n- Impact: imports "
                             "partly fail for users\n- Action Needed: check the importer's timeouts, connection pool and "
                             "validation errors\n- ETA for Resolution: investigating\n- Contact: the development team "
                             "lead}]",
                             "20m success rate under 50%: investigation_expired [rollback]",
                         }));
  auto expired = events("decision").back();
  EXPECT_DOUBLE_EQ(expired["values"]["success_rate"].get<double>(), 0.4);
  EXPECT_EQ(flag_history(), "false:Import system temporarily unavailable|true:NULL");
  EXPECT_EQ(flag(), "true:NULL");
  EXPECT_EQ(indexes(), "");
  // The known-errors warning reached the team's channel as the critical-issue template.
  bool warned = false;
  for (const auto& a : events("alert.sent"))
    warned = warned || (a.value("channel", "") == "team" && a.value("severity", "") == "warning");
  EXPECT_TRUE(warned) << describe();
}

TEST_F(Seed003, ConditionalBandStandsDownWhenTheSuccessRateRecoversInsideTheWindow) {
  clk.at(10min, [&] { imports(0.4, "Import timeout after 30s"); });
  clk.at(14min, [&] { imports(0.99); });  // fixed within the 10 minutes
  rb::run::run_outcome o = run({{"watch_for", "45m"}});

  EXPECT_EQ(o.status, "succeeded") << describe();
  auto d = decisions();
  ASSERT_EQ(d.size(), 4u) << ::testing::PrintToString(d);
  EXPECT_EQ(d[0], "10m success rate under 50%: investigation_started");
  EXPECT_EQ(d[1].substr(0, 50), "10m30s error rate over 25%, known errors: fired [a");
  EXPECT_EQ(d[2], "14m success rate under 50%: investigation_cleared");
  EXPECT_EQ(d[3], "14m error rate over 25%, known errors: rearmed");
  EXPECT_TRUE(events("rollback.start").empty());
  EXPECT_EQ(flag_history(), "");  // imports were never blocked
  EXPECT_EQ(indexes(), "organizations_exact_name_type_active,unique_organization_name_type_ci");
  auto end = events("watch.end").at(0);
  EXPECT_EQ(end["end"], "completed");
  EXPECT_EQ(end["samples"], 90);  // every 30 s for 45 minutes
}

TEST_F(Seed003, PerformanceBandEscalatesASustainedDropToTheDbaAndTheWatchGoesOnForItsDay) {
  // From minute 31 the success rate is 85% (validation failures) for half an hour and more;
  // at minute 65 the importer is fixed.
  clk.at(31min, [&] { imports(0.85, "Validation failed: missing type"); });
  clk.at(65min, [&] { imports(0.99); });
  auto t0 = std::chrono::steady_clock::now();
  rb::run::run_outcome o = run();  // watch_for: its default, 24 hours
  auto took = std::chrono::steady_clock::now() - t0;

  EXPECT_EQ(o.status, "succeeded") << describe();
  EXPECT_EQ(decisions(), (std::vector<std::string>{
                             "61m success rate under 90% for 30 minutes: fired [escalate{cause=import success rate, "
                             "level=2, severity=error, summary=CRITICAL: Migration Issue Requires Immediate Attention\n"
                             "- Problem: Organizations Import Fix: import success rate under 90% for 30 minutes\n- "
                             "Impact: a tenth or more of imported records fail\n- Action Needed: schedule a "
                             "maintenance-window rollback (runbook rollback RUN, RUN in this incident)\n- ETA for "
                             "Resolution: the next maintenance window\n- Contact: the database administrator}]",
                             "65m success rate under 90% for 30 minutes: rearmed",
                         }));
  auto end = events("watch.end").at(0);
  EXPECT_EQ(end["end"], "completed");
  EXPECT_EQ(end["samples"], 24 * 120);
  EXPECT_EQ(clk.elapsed(), 24h);
  EXPECT_LT(took, k_day_budget) << "a 24-hour watch on the fake clock";
  EXPECT_EQ(flag_history(), "");
  EXPECT_EQ(indexes(), "organizations_exact_name_type_active,unique_organization_name_type_ci");

  // The escalation opened an incident at level 2 (the DBA) while the watch went on; it stays
  // open when the run ends well: the DBA's maintenance-window rollback is still to decide.
  auto opened = events("incident.open");
  ASSERT_EQ(opened.size(), 1u) << describe();
  EXPECT_EQ(opened[0]["level"], 2);
  EXPECT_EQ(opened[0]["cause"], "import success rate");
  EXPECT_EQ(opened[0]["source_run"], o.run_id);
  auto inc = incidents();
  ASSERT_EQ(inc.size(), 1u);
  EXPECT_EQ(inc[0].level, 2);
  EXPECT_EQ(inc[0].severity, "error");
  EXPECT_EQ(inc[0].state, "open");
  EXPECT_TRUE(inc[0].opened_at == clk.wall_at(61min));
  bool dba_told = false;
  for (const auto& a : events("alert.sent"))
    dba_told = dba_told || (a.value("channel", "") == "dba" && a.value("incident", "") == inc[0].id);
  EXPECT_TRUE(dba_told) << describe();
}

TEST_F(Seed003, ConnectionsNearTheLimitAreAWarningAndTheWatchGoesOn) {
  // Minute 10: clients take the server's connections (43 more of its 50, beside the run's, its
  // lock's, the watch's and the test's) until minute 20.
  std::vector<std::unique_ptr<rb::db::connection>> clients;
  clk.at(10min, [&] {
    for (int i = 0; i < 43; ++i)
      clients.push_back(std::make_unique<rb::db::connection>(rb::db::connection_options{dsn, "client", "client"}));
  });
  clk.at(20min, [&] { clients.clear(); });
  rb::run::run_outcome o = run({{"watch_for", "30m"}});

  EXPECT_EQ(o.status, "succeeded") << describe();
  auto d = decisions();
  ASSERT_EQ(d.size(), 2u) << ::testing::PrintToString(d);
  EXPECT_EQ(d[0].substr(0, 54), "10m connections near the limit: fired [alert{severity=") << d[0];
  EXPECT_NE(d[0].find("more than 90% of the server's connections are in use"), std::string::npos) << d[0];
  EXPECT_EQ(d[1], "20m connections near the limit: rearmed");
  EXPECT_GT(events("decision").at(0)["values"]["connections_used"].get<double>(), 0.9);
  EXPECT_TRUE(events("rollback.start").empty());
  bool warned = false;
  for (const auto& a : events("alert.sent"))
    warned = warned || (a.value("channel", "") == "team" && a.value("severity", "") == "warning");
  EXPECT_TRUE(warned) << describe();
}

TEST_F(Seed003, AWatchShorterThanItsSamplePeriodEndsTheRunBeforeSamplingAndLeavesTheMigration) {
  rb::run::run_outcome o = run({{"watch_for", "10s"}, {"watch_every", "30s"}});
  EXPECT_EQ(o.status, "failed") << describe();
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->message, "watch 'decision tree': cannot start: lasting (10.0s) must be at least every (30.0s)");
  ASSERT_EQ(events("watch.error").size(), 1u);
  EXPECT_TRUE(events("watch.start").empty());
  EXPECT_TRUE(events("rollback.start").empty()) << "the migration itself succeeded: nothing is undone";
  EXPECT_EQ(indexes(), "organizations_exact_name_type_active,unique_organization_name_type_ci");
  EXPECT_EQ(flag_history(), "");
}

}  // namespace
