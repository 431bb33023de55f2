// Seed 004's incident playbooks for the database's own symptoms, run for real: each against a
// database where the symptom is present (a fixture, plus sessions or server settings a SQL file
// cannot leave behind). The diagnosis must name the problem in its audit notes; a run without
// --yes (no terminal) skips the fix, says why, and still ends with its report; a run with --yes
// fixes it, and a run after that finds nothing.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/runbooks/shipped_support.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb::testing::shipped;
using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

/// Polls `condition` (a read of observable state) until it holds, for at most ~20 s.
template <typename F>
bool eventually(F condition) {
  for (int i = 0; i < 1000; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool contains(const json& list, const std::string& text) {
  for (const auto& item : list)
    if (item.is_string() && item.get<std::string>().find(text) != std::string::npos) return true;
  return false;
}

class Seed004Ops : public ::testing::Test {
 protected:
  temp_dir dir{"rb-seed004"};
  cli_sandbox cli{dir.path()};

  void TearDown() override {
    if (std::filesystem::exists(cli.audit_log())) {
      EXPECT_EQ(cli.run({"audit", "verify"}, {{"RUNBOOK_PATH", k_shipped}}).exit_code, 0);
    }
  }

  /// `runbook run NAME --json [--yes] args...` against `dsn` (--sandbox when empty); stdin is
  /// not a terminal, so without --yes nobody confirms anything.
  run_result run(const std::string& name, std::vector<std::string> args, const std::string& dsn, bool yes) {
    std::vector<std::string> argv{"run", name, "--json"};
    if (yes) argv.push_back("--yes");
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

  static void expect_succeeded(const run_result& r) {
    EXPECT_EQ(r.proc.exit_code, 0) << r.describe();
    EXPECT_EQ(r.status(), "succeeded") << r.describe();
  }

  /// The fix was not confirmed: skipped, the reason naming the confirmation.
  static void expect_declined(const run_result& r, const std::string& step) {
    json end = r.step_end(step);
    EXPECT_EQ(end.value("status", ""), "skipped") << step << ": " << end.dump();
    EXPECT_TRUE(end.value("declined", false)) << step << ": " << end.dump();
    EXPECT_NE(end.value("reason", "").find("not confirmed"), std::string::npos) << step << ": " << end.dump();
  }

  /// The step was skipped because there was nothing to do: its `when` said why.
  static void expect_nothing_to_do(const run_result& r, const std::string& step, const std::string& reason) {
    json end = r.step_end(step);
    EXPECT_EQ(end.value("status", ""), "skipped") << step << ": " << end.dump();
    EXPECT_NE(end.dump().find(reason), std::string::npos) << step << ": " << end.dump();
  }
};

/// A session of `db` as application `app`, idle in an open transaction that has read `table`.
struct idle_transaction {
  rb::db::connection conn;
  int pid = 0;
  idle_transaction(const std::string& dsn, const std::string& app, const std::string& table)
      : conn({dsn, app, app}) {
    conn.exec("BEGIN");
    conn.exec("SELECT count(*) FROM " + table);
    pid = std::stoi(conn.exec("SELECT pg_backend_pid()").rows[0][0].text);
  }
};

// ---- cannot connect: pg_hba, SSL, connection limits ---------------------------------------

TEST_F(Seed004Ops, ConnectionsNamesTheRuleThatRejectsARoleABrokenHbaLineAndARoleAtItsLimit) {
  auto& cluster = rb::testing::private_cluster();  // roles and pg_hba.conf are the server's
  fixture_db db("troubleshoot/leaps.sql", "", cluster);
  cluster.run_sql("CREATE ROLE blocked LOGIN; CREATE ROLE capped LOGIN CONNECTION LIMIT 1", db.name);
  cluster.run_sql("CREATE DATABASE closed_for_maintenance ALLOW_CONNECTIONS false", db.name);
  // pg_hba.conf turns `blocked` away, first thing; reloaded, the server really does.
  std::filesystem::path hba = cluster.data_dir() / "pg_hba.conf";
  std::string original = rb::testing::read_file(hba);
  { std::ofstream(hba) << "local all blocked reject\n" << original; }
  cluster.run_sql("SELECT pg_reload_conf()", db.name);
  EXPECT_TRUE(eventually([&] {
    try {
      rb::db::connection c({db.dsn + " user=blocked", "blocked", "blocked"});
      return false;
    } catch (const std::exception&) {
      return true;
    }
  }));
  // capped uses its one connection.
  rb::db::connection capped({db.dsn + " user=capped", "capped", "capped-app"});
  capped.exec("SELECT 1");
  // And a line someone broke since (not reloaded: the server would refuse the file).
  { std::ofstream(hba, std::ios::app) << "host all all 10.0.0.1/99 scram-sha-256\n"; }
  int broken_line = 0;
  for (char c : rb::testing::read_file(hba)) broken_line += c == '\n';

  auto r = run("troubleshoot.connections", {"--param", "role=blocked"}, db.dsn, true);
  expect_succeeded(r);
  json auth = r.note("authentication rules");
  ASSERT_TRUE(auth.value("visible", false)) << auth.dump();
  ASSERT_EQ(auth["rejecting"].size(), 1u) << auth.dump();
  EXPECT_EQ(auth["rejecting"][0].value("line_number", 0), 1);
  EXPECT_EQ(auth["rejecting"][0].value("user_name", ""), "blocked");
  ASSERT_EQ(auth["errors"].size(), 1u) << auth.dump();
  EXPECT_EQ(auth["errors"][0].value("line_number", 0), broken_line);
  EXPECT_TRUE(contains(auth["findings"], "role blocked: local connections to " + db.name +
                                              " are rejected by pg_hba.conf line 1"))
      << auth.dump();
  EXPECT_TRUE(contains(auth["findings"], "pg_hba.conf line " + std::to_string(broken_line) + " is in error"))
      << auth.dump();

  json limits = r.note("connection limits");
  EXPECT_EQ(limits["roles_at_limit"], json::array({"capped"})) << limits.dump();
  EXPECT_TRUE(contains(limits["findings"], "role capped: 1 of 1 connections in use (CONNECTION LIMIT reached)"))
      << limits.dump();
  EXPECT_GT(limits["limits"].value("available", 0), 0);
  EXPECT_TRUE(contains(limits["findings"],
                       "database closed_for_maintenance does not allow connections (datallowconn = false)"))
      << limits.dump();

  json ssl = r.note("ssl");
  EXPECT_EQ(ssl["settings"].value("ssl", ""), "off");
  EXPECT_TRUE(contains(ssl["findings"], "ssl is off")) << ssl.dump();
  EXPECT_EQ(r.note("connectivity")["server"].value("database", ""), db.name);

  // Nothing idle for 10 minutes: the termination found nobody, and capped is still connected.
  EXPECT_EQ(r.note("idle connections terminated").value("count", -1), 0);
  EXPECT_NO_THROW(capped.exec("SELECT 1"));
}

TEST_F(Seed004Ops, ConnectionsReportsSslOnWithTheCertificateItServesAndNoCaForClientCertificates) {
  auto& cluster = rb::testing::private_cluster();  // ssl is a server setting
  fixture_db db("troubleshoot/leaps.sql", "", cluster);
  std::filesystem::path data = cluster.data_dir();
  std::string make_cert = "openssl req -new -x509 -nodes -days 1 -subj /CN=localhost -keyout '" + (data / "server.key").string() +
                          "' -out '" + (data / "server.crt").string() + "' >/dev/null 2>&1 && chmod 600 '" +
                          (data / "server.key").string() + "'";
  ASSERT_EQ(std::system(make_cert.c_str()), 0);
  cluster.run_sql("ALTER SYSTEM SET ssl = on", db.name);
  cluster.run_sql("SELECT pg_reload_conf()", db.name);
  ASSERT_TRUE(eventually([&] { return db.scalar("SHOW ssl") == "on"; }));

  auto r = run("troubleshoot.connections", {}, db.dsn, true);
  expect_succeeded(r);
  json ssl = r.note("ssl");
  EXPECT_EQ(ssl["settings"].value("ssl", ""), "on") << ssl.dump();
  EXPECT_EQ(ssl["settings"].value("ssl_cert_file", ""), "server.crt");
  EXPECT_TRUE(contains(ssl["findings"], "ssl is on: certificate server.crt, key server.key")) << ssl.dump();
  EXPECT_TRUE(contains(ssl["findings"], "no ssl_ca_file")) << ssl.dump();
  EXPECT_FALSE(ssl["this_session"].value("ssl", true));  // a Unix socket never uses SSL
}

TEST_F(Seed004Ops, ConnectionsWithoutYesKeepsTheIdleSessionAndStillReports) {
  fixture_db db("troubleshoot/leaps.sql");
  rb::db::connection idle({db.dsn, "idle client", "idle-client"});
  idle.exec("SELECT 1");
  ASSERT_TRUE(eventually([&] {
    return db.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
                     "application_name = 'idle-client' AND state = 'idle' AND now() - state_change > interval '1.2 s'") ==
           "1";
  }));
  auto r = run("troubleshoot.connections", {"--param", "idle_for=1s"}, db.dsn, false);
  expect_succeeded(r);
  expect_declined(r, "terminate idle connections");
  EXPECT_FALSE(r.note("connection limits").is_null());
  EXPECT_NO_THROW(idle.exec("SELECT 1"));
}

// ---- connection pool: sessions idle in a transaction ---------------------------------------

/// Until the server has seen `t` idle in its transaction for longer than 1 s.
bool idle_for_a_second(const fixture_db& db, const idle_transaction& t) {
  return eventually([&] {
    return db.scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(t.pid) +
                     " AND state = 'idle in transaction' AND now() - state_change > interval '1.2 s'") == "1";
  });
}

TEST_F(Seed004Ops, PoolWithoutYesNamesTheSessionIdleInATransactionAndLeavesIt) {
  fixture_db db("troubleshoot/leaps.sql");
  idle_transaction stuck(db.dsn, "stuck-worker", "users");
  ASSERT_TRUE(idle_for_a_second(db, stuck));
  std::vector<std::string> args{"--param", "idle_in_transaction=1s"};

  auto declined = run("troubleshoot.pool", args, db.dsn, false);
  expect_succeeded(declined);
  json found = declined.note("idle in transaction sessions");
  ASSERT_EQ(found.value("count", 0), 1) << found.dump();
  EXPECT_EQ(found["sessions"][0].value("application_name", ""), "stuck-worker");
  EXPECT_EQ(found["sessions"][0].value("pid", 0), stuck.pid);
  EXPECT_GE(found["sessions"][0].value("locks_held", 0), 1);
  bool by_app = false;
  json usage = declined.note("pool usage");
  for (const auto& c : usage["by_client"])
    by_app = by_app || (c.value("application", "") == "stuck-worker" && c.value("idle_in_transaction", 0) == 1);
  EXPECT_TRUE(by_app) << usage.dump();
  expect_declined(declined, "terminate sessions idle in a transaction");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(stuck.pid)), "1");
}

TEST_F(Seed004Ops, PoolTerminatesTheSessionIdleInATransactionWhenConfirmedThenFindsNone) {
  fixture_db db("troubleshoot/leaps.sql");
  idle_transaction stuck(db.dsn, "stuck-worker", "users");
  ASSERT_TRUE(idle_for_a_second(db, stuck));
  std::vector<std::string> args{"--param", "idle_in_transaction=1s"};

  auto fixed = run("troubleshoot.pool", args, db.dsn, true);
  expect_succeeded(fixed);
  EXPECT_EQ(fixed.note("idle in transaction sessions").value("count", 0), 1);
  EXPECT_EQ(fixed.step_end("terminate sessions idle in a transaction").value("status", ""), "succeeded");
  EXPECT_EQ(fixed.note("terminating sessions")["sessions"][0].value("pid", 0), stuck.pid);
  EXPECT_EQ(fixed.note("idle in transaction sessions terminated").value("count", 0), 1);
  EXPECT_ANY_THROW(stuck.conn.exec("SELECT 1"));

  auto again = run("troubleshoot.pool", args, db.dsn, true);
  expect_succeeded(again);
  EXPECT_EQ(again.note("idle in transaction sessions").value("count", -1), 0);
  expect_nothing_to_do(again, "terminate sessions idle in a transaction", "no session idle in a transaction");
}

// ---- migration failures ---------------------------------------------------------------------

const std::string k_failed_rows =
    "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NULL AND rolled_back_at IS NULL";

TEST_F(Seed004Ops, MigrationsWithoutYesNamesTheFailedMigrationAndWhatItLeftHalfApplied) {
  fixture_db db("troubleshoot/migrations.sql");

  auto declined = run("troubleshoot.migrations", {}, db.dsn, false);
  expect_succeeded(declined);
  json failed = declined.note("failed migrations");
  ASSERT_EQ(failed.value("count", 0), 1) << failed.dump();
  json m = failed["migrations"][0];
  EXPECT_EQ(m.value("migration", ""), "20250904123000_add_submission_reviews");
  EXPECT_NE(m.value("logs", "").find("57014"), std::string::npos);
  EXPECT_EQ(m.value("reapply", ""), "fails");
  EXPECT_TRUE(m.value("half_applied", false)) << m.dump();
  EXPECT_NE(m.value("reapply_error", "").find("relation \"submission_reviews\" already exists"), std::string::npos);
  expect_declined(declined, "mark failed migrations rolled back");
  EXPECT_EQ(db.scalar(k_failed_rows), "1");
  // The dry run left nothing: the half-applied table is still without its index.
  EXPECT_EQ(db.scalar("SELECT to_regclass('idx_submission_reviews_submission') IS NULL"), "t");
}

TEST_F(Seed004Ops, MigrationsMarksTheFailedMigrationRolledBackWhenConfirmedAndSaysHowToReapplyIt) {
  fixture_db db("troubleshoot/migrations.sql");
  auto fixed = run("troubleshoot.migrations", {}, db.dsn, true);
  expect_succeeded(fixed);
  EXPECT_EQ(fixed.step_end("mark failed migrations rolled back")["result"].value("marked", 0), 1);
  EXPECT_EQ(db.scalar(k_failed_rows), "0");
  EXPECT_EQ(db.scalar("SELECT migration_name FROM _prisma_migrations WHERE rolled_back_at IS NOT NULL"),
            "20250904123000_add_submission_reviews");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM _prisma_migrations_backup WHERE rolled_back_at IS NULL AND finished_at IS NULL"),
            "1");
  json advice = fixed.note("re-apply guidance")["migrations"];
  ASSERT_EQ(advice.size(), 1u) << advice.dump();
  EXPECT_NE(advice[0].value("advice", "").find("drop what it left half-applied"), std::string::npos) << advice.dump();

  auto again = run("troubleshoot.migrations", {}, db.dsn, true);
  expect_succeeded(again);
  EXPECT_EQ(again.note("failed migrations").value("count", -1), 0);
  expect_nothing_to_do(again, "mark failed migrations rolled back", "no failed migration");

  // With what it left dropped, the migration would apply again.
  db.scalar("DROP TABLE submission_reviews");
  auto ready = run("troubleshoot.migrations", {}, db.dsn, true);
  expect_succeeded(ready);
  EXPECT_EQ(ready.note("re-apply guidance")["migrations"][0].value("advice", ""), "applies cleanly: run pnpm db:migrate");
}

// ---- schema drift ---------------------------------------------------------------------------

TEST_F(Seed004Ops, SchemaDriftSaysEveryDifferenceAndFailsOnlyWhenThereIsOne) {
  auto drift = run("troubleshoot.schema_drift", {}, "", false);  // its fixture: leaps.sql changed by hand
  EXPECT_EQ(drift.proc.exit_code, 1) << drift.describe();
  EXPECT_EQ(drift.outcome.value("failed_step", ""), "main/compare with the expected schema");
  json note = drift.note("schema drift");
  EXPECT_EQ(note.value("count", 0), 3) << note.dump();
  EXPECT_EQ(note["differences"], json::array({"column submissions.review_note type changed from text to character varying(500)",
                                              "column users.legacy_score added", "index idx_points_ledger_external missing"}))
      << note.dump();

  fixture_db clean("troubleshoot/leaps.sql");
  auto same = run("troubleshoot.schema_drift", {}, clean.dsn, false);
  expect_succeeded(same);
  EXPECT_EQ(same.note("schema drift").value("count", -1), 0);
}

// ---- slow queries ---------------------------------------------------------------------------

const std::vector<std::string> k_guide_indexes = {"idx_submissions_user_activity", "idx_points_ledger_user_created",
                                                  "idx_submissions_created_status"};

TEST_F(Seed004Ops, SlowQueriesWithoutYesTimesThePlansAndSuggestsTheMissingIndex) {
  fixture_db db("troubleshoot/slow_queries.sql");

  auto declined = run("troubleshoot.slow_queries", {}, db.dsn, false);
  expect_succeeded(declined);
  json plans = declined.note("analyzed plans");
  ASSERT_EQ(plans.size(), 4u) << plans.dump();
  json queue = plans["review queue"];
  EXPECT_GT(queue.value("execution_ms", 0.0), 0.0);
  EXPECT_TRUE(queue.contains("planning_ms"));
  EXPECT_TRUE(contains(queue["node_types"], "Seq Scan")) << queue.dump();
  ASSERT_EQ(queue["seq_scans"].size(), 1u) << queue.dump();
  EXPECT_EQ(queue["seq_scans"][0].value("table", ""), "submissions");
  EXPECT_TRUE(queue["seq_scans"][0].value("big", false));
  EXPECT_GT(queue["seq_scans"][0].value("table_rows", 0.0), 40000.0);
  json suggested = declined.note("missing index suggestions");
  ASSERT_EQ(suggested.value("count", 0), 1) << suggested.dump();
  EXPECT_EQ(suggested["suggestions"][0].value("index", ""), "idx_submissions_created_status");
  EXPECT_EQ(suggested["suggestions"][0].value("query", ""), "review queue");
  for (const auto& ix : k_guide_indexes) {
    expect_declined(declined, ix);
    EXPECT_EQ(db.scalar("SELECT to_regclass('" + ix + "') IS NULL"), "t") << ix;
  }
}

TEST_F(Seed004Ops, SlowQueriesBuildsTheGuidesIndexesWhenConfirmedAndTheQueueStopsScanning) {
  fixture_db db("troubleshoot/slow_queries.sql");
  auto fixed = run("troubleshoot.slow_queries", {}, db.dsn, true);
  expect_succeeded(fixed);
  for (const auto& ix : k_guide_indexes) {
    EXPECT_EQ(fixed.step_end(ix).value("status", ""), "succeeded") << ix;
    EXPECT_EQ(db.scalar("SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = '" + ix + "'::regclass"), "t") << ix;
  }

  auto again = run("troubleshoot.slow_queries", {}, db.dsn, true);
  expect_succeeded(again);
  EXPECT_EQ(again.note("missing index suggestions").value("count", -1), 0);
  EXPECT_TRUE(again.note("analyzed plans")["review queue"]["seq_scans"].empty())
      << again.note("analyzed plans").dump();
  for (const auto& ix : k_guide_indexes) expect_nothing_to_do(again, ix, "it exists");
}

// ---- memory ---------------------------------------------------------------------------------

TEST_F(Seed004Ops, MemoryReportsTheSettingsAndTheTemporaryFilesOfADatabaseThatSpilled) {
  fixture_db db("troubleshoot/leaps.sql");
  {
    rb::db::connection spill({db.dsn, "export", "export-job"});
    spill.exec("SET work_mem = '64kB'");
    spill.exec("SELECT count(*) FROM (SELECT g, md5(g::text) AS h FROM generate_series(1, 100000) g ORDER BY h) s");
  }  // its statistics reach pg_stat_database when the session has ended
  ASSERT_TRUE(eventually([&] {
    return db.scalar("SELECT temp_files > 0 FROM pg_stat_database WHERE datname = current_database()") == "t";
  }));

  auto r = run("troubleshoot.memory", {}, db.dsn, false);  // read-only: needs no --yes
  expect_succeeded(r);
  json temp = r.note("temporary files");
  EXPECT_GE(temp["this_database"].value("temp_files", 0), 1) << temp.dump();
  EXPECT_GT(temp["this_database"].value("temp_bytes", 0.0), 0.0);
  EXPECT_TRUE(contains(temp["spilling"], db.name)) << temp.dump();
  json settings = r.note("memory settings");
  EXPECT_EQ(settings["settings"].value("work_mem", ""), db.scalar("SELECT current_setting('work_mem')"));
  EXPECT_TRUE(settings["settings"].contains("shared_buffers"));
  EXPECT_GT(settings.value("worst_case_bytes", 0.0), 0.0);
  EXPECT_FALSE(r.note("queries writing temporary files").value("source", "").empty());
}

TEST_F(Seed004Ops, MemoryNamesTheQueriesThatSpilledWhenPgStatStatementsIsThere) {
  auto& cluster = rb::testing::private_cluster();  // shared_preload_libraries needs a restart
  fixture_db db("troubleshoot/leaps.sql", "", cluster);
  cluster.run_sql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'", db.name);
  cluster.restart();
  cluster.run_sql("CREATE EXTENSION pg_stat_statements", db.name);
  {
    rb::db::connection spill({db.dsn, "export", "export-job"});
    spill.exec("SET work_mem = '64kB'");
    spill.exec("SELECT count(*) FROM (SELECT g, md5(g::text) AS h FROM generate_series(1, 100000) g ORDER BY h) s");
  }

  auto r = run("troubleshoot.memory", {}, db.dsn, false);
  expect_succeeded(r);
  json queries = r.note("queries writing temporary files");
  EXPECT_EQ(queries.value("source", ""), "pg_stat_statements");
  ASSERT_GE(queries.value("count", 0), 1) << queries.dump();
  EXPECT_NE(queries["queries"][0].value("query", "").find("generate_series"), std::string::npos) << queries.dump();
  EXPECT_GT(queries["queries"][0].value("temp_bytes", 0.0), 0.0);
}

// ---- materialized views: refresh failures, missing data ------------------------------------

TEST_F(Seed004Ops, ViewsWithoutYesNameTheBrokenStaleAndBlockedViewsAndChangeNothing) {
  fixture_db db("troubleshoot/views.sql");
  idle_transaction reader(db.dsn, "analytics-export", "activity_metrics");  // holds a refresh up

  auto declined = run("troubleshoot.views", {}, db.dsn, false);
  expect_succeeded(declined);
  json status = declined.note("materialized views");
  EXPECT_EQ(status["unpopulated"], json::array({"cohort_metrics"})) << status.dump();
  json data = declined.note("view data");
  EXPECT_EQ(data.value("broken", 0), 1) << data.dump();
  EXPECT_EQ(data.value("stale", 0), 2) << data.dump();
  for (const auto& v : data["views"]) {
    std::string name = v.value("view", "");
    if (name == "cohort_metrics") {
      EXPECT_NE(v.value("error", "").find("division by zero"), std::string::npos) << v.dump();
    } else if (name == "leaderboard_totals") {
      EXPECT_EQ(v.value("missing", 0), 5) << v.dump();  // points awarded after the last refresh
    } else {
      EXPECT_EQ(v.value("missing", 0), 2) << v.dump();  // activity_metrics: submissions made after it
    }
  }
  json blocking = declined.note("sessions blocking a refresh");
  ASSERT_EQ(blocking.value("count", 0), 1) << blocking.dump();
  EXPECT_EQ(blocking["sessions"][0].value("pid", 0), reader.pid);
  EXPECT_EQ(blocking["sessions"][0].value("view", ""), "activity_metrics");
  for (const char* s : {"terminate sessions blocking the refresh", "recreate broken views", "refresh stale views"})
    expect_declined(declined, s);
  EXPECT_EQ(db.scalar("SELECT ispopulated FROM pg_matviews WHERE matviewname = 'cohort_metrics'"), "f");
  EXPECT_EQ(declined.note("views now").value("stale", 0), 2);
}

TEST_F(Seed004Ops, ViewsTerminateTheBlockerRecreateTheBrokenViewAndRefreshTheStaleOnesWhenConfirmed) {
  fixture_db db("troubleshoot/views.sql");
  idle_transaction reader(db.dsn, "analytics-export", "activity_metrics");  // holds a refresh up

  auto fixed = run("troubleshoot.views", {}, db.dsn, true);
  expect_succeeded(fixed);
  EXPECT_ANY_THROW(reader.conn.exec("SELECT 1"));
  json recreated = fixed.note("views recreated");
  ASSERT_EQ(recreated["views"].size(), 1u) << recreated.dump();
  EXPECT_EQ(recreated["views"][0].value("from", ""), "views/cohort_metrics.sql");
  // The broken definition was saved before the view was dropped.
  EXPECT_EQ(db.scalar("SELECT count(*) FROM matview_definition_backup WHERE view_name = 'cohort_metrics' "
                      "AND definition NOT LIKE '%nullif%' AND NOT populated"),
            "1");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM cohort_metrics WHERE approval_rate IS NULL"), "1");  // the reviewers
  json refreshed = fixed.note("views refreshed")["views"];
  ASSERT_EQ(refreshed.size(), 2u) << refreshed.dump();
  for (const auto& v : refreshed) {
    EXPECT_EQ(v.value("concurrently", false), v.value("view", "") == "leaderboard_totals") << v.dump();
    EXPECT_GE(v.value("seconds", -1.0), 0.0);
  }
  EXPECT_EQ(db.scalar("SELECT count(*) FROM analytics_refresh_log WHERE refreshed_at > now() - interval '1 hour'"), "2");
  json now = fixed.note("views now");
  EXPECT_EQ(now.value("stale", -1), 0) << now.dump();
  EXPECT_EQ(now.value("broken", -1), 0) << now.dump();

  auto again = run("troubleshoot.views", {}, db.dsn, true);
  expect_succeeded(again);
  EXPECT_EQ(again.note("view data").value("stale", -1), 0);
  EXPECT_EQ(again.note("view data").value("broken", -1), 0);
  EXPECT_EQ(again.note("sessions blocking a refresh").value("count", -1), 0);
  expect_nothing_to_do(again, "terminate sessions blocking the refresh", "no session holds a refresh up");
  expect_nothing_to_do(again, "recreate broken views", "no view is broken");
  expect_nothing_to_do(again, "refresh stale views", "every view matches its query");
}

}  // namespace
