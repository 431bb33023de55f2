// The shipped runbooks, run for real: each one against its own fixture (--sandbox, or a fresh
// database of the test cluster loaded with the fixture, for the runs that need a prepared or
// inspected database), asserting what an SRE would look at -- the status, the notes and step
// results in the audit log, and the database afterwards. Two migrations are also made to fail
// their verification, and must leave the database exactly as they found it.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "engine/db/connection.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/runbooks/shipped_support.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using json = nlohmann::json;
using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

const std::string k_shipped = std::string(RUNBOOK_SOURCE_DIR) + "/runbooks";
/// The example config migration.organizations_import_fix needs (its escalation policy).
const std::string k_import_fix_config = k_shipped + "/migration/organizations_import_fix.config";
/// The example config seed 004's recovery runbooks need (their escalation policy `recovery`).
const std::string k_recovery_config = k_shipped + "/troubleshoot/recovery.config";

/// migration.critical_fixes runs only in its maintenance window (02:00-04:00 UTC) unless told
/// otherwise; tests/runbooks/seed001_002_test.cpp tests the window itself.
const std::vector<std::string> k_any_time = {"--param", "window=any"};

/// Every runbook shipped in runbooks/: a new one must get a test here.
const std::set<std::string> k_tested = {
    "demo.hello",
    "migration.centralized",
    "migration.centralized_reconcile",
    "migration.centralized_restore",
    "migration.platform_tables",
    "migration.critical_fixes",
    "migration.organizations_import_fix",
    "migration.rollback_users",
    "monitor.centralized",
    "monitor.critical_fixes",
    "monitor.organizations_import_rollback",
    "review.organizations_import_weekly",
    "review.organizations_import_monthly",
    "maintenance.daily",
    "maintenance.weekly",
    "maintenance.monthly",
    "maintenance.sync_locks",
    "monitor.platform",
    "troubleshoot.platform",
    "troubleshoot.connections",
    "troubleshoot.slow_queries",
    "troubleshoot.orphans",
    "troubleshoot.duplicates",
    "troubleshoot.leaderboard",
    "troubleshoot.recovery_check",
    "troubleshoot.pool",           // seed004_ops_test.cpp
    "troubleshoot.migrations",     // seed004_ops_test.cpp
    "troubleshoot.schema_drift",   // seed004_ops_test.cpp
    "troubleshoot.memory",         // seed004_ops_test.cpp
    "troubleshoot.views",          // seed004_ops_test.cpp
    // Seed 004's data-side playbooks: tests/runbooks/seed004_data_test.cpp.
    "troubleshoot.points",
    "troubleshoot.amplify_quota",
    "troubleshoot.roles",
    "troubleshoot.user_sync",
    "troubleshoot.webhooks",
    "troubleshoot.email_matching",
    "troubleshoot.analytics",
    "troubleshoot.damage_assessment",        // tests/runbooks/seed004_recovery_test.cpp
    "troubleshoot.restore_from_backup",      // tests/runbooks/seed004_recovery_test.cpp
    "troubleshoot.point_in_time_recovery",   // tests/runbooks/seed004_recovery_test.cpp
};

using rb::testing::shipped::run_result;

/// A database of the test cluster (or of `cluster`) with a shipped fixture loaded.
struct fixture_db {
  std::string dsn, name;

  explicit fixture_db(const std::string& fixture, const std::string& extra_sql = "",
                      rb::db::cluster& cluster = rb::testing::shared_cluster()) {
    dsn = rb::testing::fresh_database(cluster, "shipped");
    name = dsn.substr(dsn.find("dbname=") + 7);
    name = name.substr(0, name.find(' '));
    cluster.run_sql_file(k_shipped + "/" + fixture, name);
    if (!extra_sql.empty()) cluster.run_sql(extra_sql, name);
  }

  std::string scalar(const std::string& sql) const {
    rb::db::connection c({dsn, "test", "shipped_test"});
    auto r = c.exec(sql);
    return r.rows.empty() || r.rows[0].empty() || r.rows[0][0].null ? "" : r.rows[0][0].text;
  }

  /// Everything a migration could change, as text: relations (with their kind and validity),
  /// columns, functions, policies, triggers, and a checksum of every table's rows.
  std::string fingerprint() const {
    rb::db::connection c({dsn, "test", "shipped_test"});
    std::string out = c.exec(R"sql(
      SELECT string_agg(x, E'\n' ORDER BY x) FROM (
        SELECT 'rel ' || c.relname || ' ' || c.relkind::text || coalesce(' valid=' || i.indisvalid::text, '')
          FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid
          WHERE c.relnamespace = 'public'::regnamespace
        UNION ALL SELECT 'col ' || table_name || '.' || column_name || ' ' || data_type || ' ' || coalesce(column_default, '')
          FROM information_schema.columns WHERE table_schema = 'public'
        UNION ALL SELECT 'fn ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
        UNION ALL SELECT 'policy ' || tablename || '.' || policyname FROM pg_policies
        UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal) s(x))sql")
                          .rows[0][0].text;
    auto tables = c.exec("SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    for (const auto& t : tables.rows)
      out += "\ndata " + t[0].text + " " +
             c.exec("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM " + t[0].text + " t")
                 .rows[0][0].text;
    return out;
  }
};

class Shipped : public ::testing::Test {
 protected:
  temp_dir dir{"rb-shipped"};
  cli_sandbox cli{dir.path()};

  std::map<std::string, std::string> env() const { return {{"RUNBOOK_PATH", k_shipped}}; }

  // Whatever the runs did, their audit log's hash chain holds.
  void TearDown() override {
    if (std::filesystem::exists(cli.audit_log())) {
      EXPECT_EQ(cli.run({"audit", "verify"}, env()).exit_code, 0);
    }
  }

  /// `runbook run NAME --yes --json args...` against --sandbox, or against `db` when given.
  run_result run(const std::string& name, std::vector<std::string> args = {}, const fixture_db* db = nullptr) {
    std::vector<std::string> argv{"run", name, "--yes", "--json"};
    if (db) argv.insert(argv.end(), {"--dsn", db->dsn});
    else argv.push_back("--sandbox");
    argv.insert(argv.end(), args.begin(), args.end());
    run_result r;
    r.proc = cli.run(argv, env());
    r.outcome = json::parse(r.proc.out, nullptr, false);
    if (r.outcome.is_discarded() || !r.outcome.is_object()) r.outcome = json::object();
    std::string id = r.outcome.value("run", "");
    for (auto& rec : cli.records())
      if (rec.value("run", "") == id) r.records.push_back(rec);
    return r;
  }

  void expect_succeeded(const run_result& r) {
    EXPECT_EQ(r.proc.exit_code, 0) << r.describe();
    EXPECT_EQ(r.status(), "succeeded") << r.describe();
  }

  /// The steps of a runbook (by phase/step) that have a rollback handler, from `show --format json`.
  std::set<std::string> steps_with_rollback(const std::string& name) {
    auto r = cli.run({"show", name, "--format", "json"}, env());
    std::set<std::string> out;
    auto j = json::parse(r.out, nullptr, false);
    if (j.is_discarded()) return out;
    for (const auto& p : j["phases"])
      for (const auto& s : p["steps"])
        if (s.value("rollback", false)) out.insert(p["name"].get<std::string>() + "/" + s["name"].get<std::string>());
    return out;
  }
};

// ---- the whole directory -----------------------------------------------------------------

TEST_F(Shipped, CheckPassesAndEveryShippedRunbookHasATest) {
  // Each example config defines the escalation policy of its own runbooks: every runbook checks
  // ok under one of them, and the only errors are the policies the other config defines.
  auto check = cli.run({"check", k_shipped, "--config", k_import_fix_config}, env());
  auto recovery = cli.run({"check", k_shipped, "--config", k_recovery_config}, env());
  for (const auto* out : {&check.out, &recovery.out}) {
    std::istringstream lines(*out);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("error", 0) == 0) {
        EXPECT_TRUE(line.find("escalation policy 'recovery' is not defined") != std::string::npos ||
                    line.find("escalation policy 'import_fix' is not defined") != std::string::npos)
            << line;
      }
    }
  }
  check.out += recovery.out;
  auto list = cli.run({"list", "--json"}, env());
  ASSERT_EQ(list.exit_code, 0) << list.err;
  std::set<std::string> shipped;
  for (const auto& item : json::parse(list.out)) {
    shipped.insert(item["name"].get<std::string>());
    EXPECT_FALSE(item.contains("error")) << item.dump();
    EXPECT_NE(check.out.find("ok     " + item["name"].get<std::string>()), std::string::npos) << check.out;
  }
  EXPECT_EQ(shipped, k_tested) << "a shipped runbook without a test here, or a test of one that is gone";
}

TEST_F(Shipped, DemoHello) { expect_succeeded(run("demo.hello")); }

TEST_F(Shipped, MigrationCentralized) {
  auto r = run("migration.centralized");
  expect_succeeded(r);
  EXPECT_EQ(r.phase_end("migrate").value("transaction", ""), "committed");
  EXPECT_FALSE(r.note("migration healthy").is_null());
}

// ---- migrations ------------------------------------------------------------------------

TEST_F(Shipped, PlatformTablesCreatesVerifiesAndCanUndoEachMigration) {
  auto r = run("migration.platform_tables");
  expect_succeeded(r);
  EXPECT_EQ(r.phase_end("migrate").value("transaction", ""), "committed");
  json policies = r.step_end("RLS policies").value("result", json());
  for (const char* t : {"conversations", "messages", "feedback", "usage_metrics"}) EXPECT_EQ(policies.value(t, 0), 4) << t;
  json queries = r.step_end("query performance")["result"]["queries"];
  ASSERT_EQ(queries.size(), 2u) << queries.dump();
  EXPECT_EQ(queries[1].value("index", ""), "idx_messages_conversation_created");
  EXPECT_TRUE(queries[1].value("uses_index", false)) << queries.dump();
  EXPECT_EQ(r.step_end("tenant isolation").value("status", ""), "succeeded");
  EXPECT_FALSE(r.note("platform tables created").is_null());
  EXPECT_EQ(steps_with_rollback("migration.platform_tables"),
            (std::set<std::string>{"migrate/003 conversations", "migrate/004 messages", "migrate/005 feedback",
                                   "migrate/006 usage_metrics"}));
}

TEST_F(Shipped, PlatformTablesFailingVerificationDropsEverythingItCreated) {
  fixture_db db("migration/platform_tables.sql", "", rb::testing::private_cluster());  // creates a role
  std::string before = db.fingerprint();
  // Demanding a fifth RLS policy per table fails the verify phase after the migrations committed.
  auto r = run("migration.platform_tables", {"--param", "policies_per_table=5"}, &db);
  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  EXPECT_EQ(r.status(), "rolled_back") << r.describe();
  EXPECT_EQ(r.outcome.value("failed_step", ""), "verify/RLS policies");
  EXPECT_EQ(r.phase_end("migrate").value("transaction", ""), "committed");
  std::vector<std::string> undone;
  for (const auto& e : r.events("rollback.end")) {
    EXPECT_EQ(e.value("status", ""), "succeeded") << e.dump();
    undone.push_back(e.value("step", ""));
  }
  EXPECT_EQ(undone, (std::vector<std::string>{"006 usage_metrics", "005 feedback", "004 messages", "003 conversations"}));
  EXPECT_EQ(db.fingerprint(), before);
}

TEST_F(Shipped, CriticalFixesMigratesAndTestsTheSyncFunctions) {
  auto r = run("migration.critical_fixes", k_any_time);
  expect_succeeded(r);
  EXPECT_EQ(r.step_end("version column", "migrate").value("status", ""), "succeeded");
  for (const char* s : {"version column", "unique constraints", "new tables", "RPC functions",
                        "sync lock holds off a second sync", "upserts do not duplicate events"})
    EXPECT_EQ(r.step_end(s, "verify").value("status", ""), "succeeded") << s;
  EXPECT_FALSE(r.note("critical fixes migration completed").is_null());
  EXPECT_EQ(steps_with_rollback("migration.critical_fixes"),
            (std::set<std::string>{"migrate/version column", "migrate/unique event indexes", "migrate/sync tables",
                                   "migrate/sync functions", "migrate/monitoring views"}));
}

TEST_F(Shipped, CriticalFixesSkipsAnExistingVersionColumnAndRollsBackWhenItIsTheWrongType) {
  // A version column that already exists is skipped, as the guide says; this one is text, so
  // the verification fails and everything else the migration created is dropped again.
  fixture_db db("migration/critical_fixes.sql", "ALTER TABLE messenger_conversations ADD COLUMN version TEXT");
  std::string before = db.fingerprint();
  auto r = run("migration.critical_fixes", k_any_time, &db);
  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  EXPECT_EQ(r.status(), "rolled_back") << r.describe();
  json skipped = r.step_end("version column", "migrate");
  EXPECT_EQ(skipped.value("status", ""), "skipped");
  EXPECT_EQ(skipped.value("reason", ""), "version column already exists");
  EXPECT_EQ(r.outcome.value("failed_step", ""), "verify/version column");
  EXPECT_NE(r.outcome["error"].value("message", "").find("expected integer DEFAULT 0"), std::string::npos) << r.outcome.dump();
  EXPECT_EQ(r.events("rollback.end").size(), 4u);  // views, functions, tables, indexes: not the skipped column
  EXPECT_EQ(db.fingerprint(), before);
}

// Seed 002 asks for a migration that is safe to run again: on a database where it already ran,
// every migrate step is skipped with its reason audited, and the verification passes.
TEST_F(Shipped, CriticalFixesRunsAgainWhereItAlreadyRan) {
  fixture_db db("migration/critical_fixes.sql");
  expect_succeeded(run("migration.critical_fixes", k_any_time, &db));
  std::string after_first = db.fingerprint();
  auto again = run("migration.critical_fixes", k_any_time, &db);
  expect_succeeded(again);
  for (const char* s : {"version column", "unique event indexes", "sync tables", "sync functions", "monitoring views"}) {
    json end = again.step_end(s, "migrate");
    EXPECT_EQ(end.value("status", ""), "skipped") << s << " " << end.dump();
    EXPECT_NE(end.value("reason", "").find("already exist"), std::string::npos) << end.dump();
  }
  for (const auto& e : again.events("sql")) EXPECT_NE(e.value("sqlstate", ""), "42P07") << e.dump();
  // the database is as the first run left it (the smoke tests remove their rows)
  EXPECT_EQ(db.fingerprint(), after_first);
}

// Each migration's rollback restores its fixture exactly: `runbook rehearse` passes. What the
// runs advanced in sequences is a note (sequences never roll back), not a failure.
TEST_F(Shipped, MigrationsRehearseGreen) {
  for (const char* name : {"migration.critical_fixes", "migration.platform_tables", "migration.centralized_reconcile",
                           "migration.rollback_users"}) {
    std::vector<std::string> argv{"rehearse", name, "--sandbox", "--json"};
    if (std::string(name) == "migration.critical_fixes") argv.insert(argv.end(), k_any_time.begin(), k_any_time.end());
    auto r = cli.run(argv, env());
    EXPECT_EQ(r.exit_code, 0) << name << "\n" << r.out << r.err;
    json j = json::parse(r.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.out << r.err;
    EXPECT_EQ(j.value("restored", false), true) << name << " " << j.dump();
    EXPECT_TRUE(j["diff"].empty()) << name << " " << j.dump();
  }
}

TEST_F(Shipped, OrganizationsImportFixNeedsItsEscalationPolicy) {
  auto r = cli.run({"run", "migration.organizations_import_fix", "--sandbox", "--yes"}, env());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("escalation policy 'import_fix' is not defined"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("run "), std::string::npos) << "refused before anything ran: " << r.out;
}

TEST_F(Shipped, OrganizationsImportFixBuildsTheIndexesAndImportsWork) {
  // Its decision tree watches a healthy importer (the fixture's) for 3 seconds and stays quiet;
  // tests/runbooks/seed003_watch_test.cpp provokes each band of it.
  auto r = run("migration.organizations_import_fix",
               {"--config", k_import_fix_config, "--param", "watch_for=3s", "--param", "watch_every=1s"});
  expect_succeeded(r);
  json baseline = r.note("organizations baseline");
  EXPECT_EQ(baseline.value("total_records", 0), 340);
  EXPECT_EQ(baseline.value("active_records", 0), 300);
  EXPECT_EQ(r.step_end("import with ON CONFLICT").value("status", ""), "succeeded");
  EXPECT_EQ(r.step_end("no duplicate organizations").value("status", ""), "succeeded");
  EXPECT_FALSE(r.note("performance within the baseline").is_null()) << r.describe();
  // the success template, on the example config's `team` log channel
  EXPECT_NE(r.describe().find("alert [info] MIGRATION SUCCESS: Organizations Import Fix"), std::string::npos) << r.describe();
  ASSERT_EQ(r.events("watch.end").size(), 1u);
  EXPECT_EQ(r.events("watch.end")[0].value("end", ""), "completed");
  EXPECT_EQ(r.events("watch.end")[0].value("samples", 0), 3);
  EXPECT_TRUE(r.events("decision").empty()) << r.describe();
  bool concurrently = false;
  for (const auto& s : r.events("sql"))
    concurrently = concurrently || s.value("sql", "").find("CREATE UNIQUE INDEX CONCURRENTLY") != std::string::npos;
  EXPECT_TRUE(concurrently);
}

TEST_F(Shipped, OrganizationsImportFixRehearsesItsRollbackExactly) {
  // Forward (with a short watch), the rollback path (flag blocked, indexes dropped, flag
  // restored), and a database that is exactly the fixture again.
  auto r = cli.run({"rehearse", "migration.organizations_import_fix", "--sandbox", "--config", k_import_fix_config,
                    "--param", "watch_for=2s", "--param", "watch_every=1s"},
                   env());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("REHEARSAL PASSED"), std::string::npos) << r.out << r.err;
}

TEST_F(Shipped, OrganizationsImportFixWithDuplicatesBuildsNoIndex) {
  // Two active organizations differing only in case: the case-insensitive index could not be
  // built. The pre-flight finds them before any index is tried (tests/runbooks/seed003_test.cpp
  // names them; tests/runbooks/faults_test.cpp makes an index build itself fail).
  fixture_db db("migration/organizations_import_fix.sql",
                "INSERT INTO organizations (name, type) VALUES ('organization 7', 'partner')");
  std::string before = db.fingerprint();
  auto r = run("migration.organizations_import_fix", {"--config", k_import_fix_config}, &db);
  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  EXPECT_EQ(r.outcome.value("failed_step", ""), "baseline/no duplicate organizations");
  EXPECT_TRUE(r.events("rollback.end").empty()) << "nothing was changed: nothing to undo, no rollback notification";
  EXPECT_EQ(db.fingerprint(), before);
}

TEST_F(Shipped, RollbackUsersNeedsConfirmationThenKeepsTheWebUserAndThePlaceholder) {
  fixture_db db("migration/rollback_users.sql");
  std::string before = db.fingerprint();
  auto refused = cli.run({"run", "migration.rollback_users", "--dsn", db.dsn}, env());  // no --yes, no terminal
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("Nothing was run"), std::string::npos) << refused.err;
  EXPECT_EQ(db.fingerprint(), before);

  auto r = run("migration.rollback_users");
  expect_succeeded(r);
  auto confirms = r.events("confirm");
  ASSERT_EQ(confirms.size(), 2u);
  for (const auto& c : confirms) EXPECT_EQ(c.value("answer", ""), "yes");
  EXPECT_EQ(r.step_end("delete migrated users")["result"].value("deleted", 0), 7);
  json done = r.note("partial rollback of users done");
  EXPECT_EQ(done.value("users_left", 0), 2);  // MIGRATION_UNKNOWN_USER and the web user
  EXPECT_EQ(done.value("backed_up", 0), 9);
  EXPECT_EQ(done.value("placeholder_conversations", 0), 12);
}

// ---- maintenance -----------------------------------------------------------------------

TEST_F(Shipped, DailyRefreshesTheSummaryViewsConcurrently) {
  auto r = run("maintenance.daily");
  expect_succeeded(r);
  json rows = r.note("summary views refreshed");
  EXPECT_GT(rows.value("message_feedback_summary", 0), 0) << rows.dump();
  EXPECT_GT(rows.value("monthly_usage_summary", 0), 0) << rows.dump();
  int refreshed = 0;
  for (const auto& s : r.events("sql"))
    if (s.value("sql", "").find("REFRESH MATERIALIZED VIEW CONCURRENTLY") != std::string::npos && !s.contains("sqlstate"))
      ++refreshed;
  EXPECT_EQ(refreshed, 2);
}

TEST_F(Shipped, WeeklyVacuumsOutsideATransactionAndLogsTableSizes) {
  auto r = run("maintenance.weekly");
  expect_succeeded(r);
  int vacuums = 0;
  for (const auto& s : r.events("sql"))
    if (s.value("sql", "").rfind("VACUUM ANALYZE", 0) == 0 && !s.contains("sqlstate")) ++vacuums;
  EXPECT_EQ(vacuums, 4);
  json sizes = r.note("table sizes");
  std::set<std::string> tables;
  for (const auto& t : sizes["tables"]) tables.insert(t.value("tablename", ""));
  EXPECT_TRUE(tables.count("messages") && tables.count("usage_metrics")) << sizes.dump();
}

TEST_F(Shipped, MonthlyArchivesOnlyOldConversationsAndMarksThem) {
  fixture_db db("maintenance/platform.sql");
  auto r = run("maintenance.monthly", {}, &db);
  expect_succeeded(r);
  EXPECT_EQ(r.note("conversations to archive").value("count", 0), 22);
  EXPECT_EQ(r.step_end("archive")["result"].value("archived", 0), 22);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM conversations WHERE is_archived AND metadata->>'archived_by_run' = '" +
                      r.outcome.value("run", "") + "'"),
            "22");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM conversations WHERE NOT is_archived"), "26");
  // A second run finds nothing left to archive.
  auto again = run("maintenance.monthly", {}, &db);
  expect_succeeded(again);
  EXPECT_EQ(again.step_end("archive")["result"].value("archived", -1), 0);
}

// Undoing the archive restores every row exactly as it was: updated_at too, which the
// updated_at trigger would otherwise set to the time of the undo (data loss for "last activity").
// Seed 001's maintenance runs daily, weekly and monthly under `runbook schedule`.
TEST_F(Shipped, MaintenanceIsScheduledDailyWeeklyAndMonthly) {
  auto r = cli.run({"schedule", "--list", "--now", "2026-12-03T00:00:00Z"}, env());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // (columns are as wide as their longest entry: compared with single spaces)
  std::string list = std::regex_replace(r.out, std::regex(" +"), " ");
  for (const char* line : {"maintenance.daily - 0 3 * * * UTC once 2026-12-03 03:00 UTC 2026-12-03T03:00:00Z",
                           "maintenance.weekly - 0 4 * * sun UTC once 2026-12-06 04:00 UTC 2026-12-06T04:00:00Z",
                           "maintenance.monthly - 0 5 1 * * UTC once 2027-01-01 05:00 UTC 2027-01-01T05:00:00Z"})
    EXPECT_NE(list.find(line), std::string::npos) << line << "\nnot in\n" << r.out;
}

TEST_F(Shipped, MonthlyRollbackRestoresConversationsExactly) {
  fixture_db db("maintenance/platform.sql");
  const std::string rows = "SELECT md5(string_agg(c::text, '|' ORDER BY id)) FROM conversations c";
  std::string before = db.scalar(rows);
  auto r = run("maintenance.monthly", {}, &db);
  expect_succeeded(r);
  ASSERT_NE(db.scalar(rows), before);
  auto undo = cli.run({"rollback", r.outcome.value("run", ""), "--dsn", db.dsn, "--yes"}, env());
  EXPECT_EQ(undo.exit_code, 0) << undo.out << undo.err;
  EXPECT_EQ(db.scalar(rows), before);
  EXPECT_EQ(db.scalar("SELECT tgenabled FROM pg_trigger WHERE tgname = 'trigger_conversations_updated_at'"), "O");
}

// ---- troubleshooting -------------------------------------------------------------------

TEST_F(Shipped, ConnectionsReportsStatesAndTerminatesIdleSessions) {
  expect_succeeded(run("troubleshoot.connections"));

  fixture_db db("troubleshoot/leaps.sql");
  rb::db::connection idle({db.dsn, "idle client", "idle-client"});
  idle.exec("SELECT 1");
  // Until the server has seen it idle for longer than idle_for.
  rb::db::connection admin({db.dsn, "admin", "shipped_test"});
  bool idle_long_enough = false;
  for (int i = 0; i < 1000 && !idle_long_enough; ++i) {
    idle_long_enough = admin.exec("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND "
                                  "application_name = 'idle-client' AND state = 'idle' AND "
                                  "now() - state_change > interval '1.2 s'")
                           .rows.size() == 1;
    if (!idle_long_enough) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(idle_long_enough);
  auto r = run("troubleshoot.connections", {"--param", "idle_for=1s"}, &db);
  expect_succeeded(r);
  json killed = r.note("idle connections terminated");
  EXPECT_GE(killed.value("count", 0), 1) << killed.dump();
  bool ours = false;
  for (const auto& s : killed["sessions"]) ours = ours || s.value("application_name", "") == "idle-client";
  EXPECT_TRUE(ours) << killed.dump();
  EXPECT_ANY_THROW(idle.exec("SELECT 1"));
}

TEST_F(Shipped, SlowQueriesExplainsTheHotQueriesAndCanAddIndexes) {
  auto r = run("troubleshoot.slow_queries", {"--param", "create_indexes=false"});
  expect_succeeded(r);
  EXPECT_GT(r.note("unused indexes (no scans since the statistics were last reset)").value("count", 0), 0);
  EXPECT_EQ(r.note("query plans").size(), 4u);
  EXPECT_EQ(r.step_end("idx_submissions_user_activity").value("status", ""), "skipped");
  EXPECT_NE(r.step_end("idx_submissions_user_activity").dump().find("create_indexes is false"), std::string::npos);

  fixture_db db("troubleshoot/leaps.sql");
  auto add = run("troubleshoot.slow_queries", {"--param", "create_indexes=true"}, &db);
  expect_succeeded(add);
  for (const char* idx : {"idx_submissions_user_activity", "idx_points_ledger_user_created", "idx_submissions_created_status"}) {
    EXPECT_EQ(add.step_end(idx).value("status", ""), "succeeded") << idx;
    EXPECT_EQ(db.scalar(std::string("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                    "WHERE c.relname = '") + idx + "'"),
              "t")
        << idx;
  }
}

TEST_F(Shipped, OrphansAreFoundBackedUpAndDeletedThenTheRecoveryCheckPasses) {
  expect_succeeded(run("troubleshoot.recovery_check"));  // its fixture: a restore that went well

  // On the planted fixture the recovery check fails, naming the orphans...
  fixture_db db("troubleshoot/leaps.sql");
  auto failing = run("troubleshoot.recovery_check", {}, &db);
  EXPECT_EQ(failing.proc.exit_code, 1) << failing.describe();
  EXPECT_EQ(failing.outcome.value("failed_step", ""), "main/referential integrity");
  EXPECT_NE(failing.outcome["error"].value("message", "").find(
                "orphaned submissions: 3, orphaned points: 4, orphaned attachments: 2"),
            std::string::npos)
      << failing.outcome.dump();

  // ...troubleshoot.orphans finds and removes them, keeping a copy of each...
  auto r = run("troubleshoot.orphans", {}, &db);
  expect_succeeded(r);
  json found = r.note("orphaned records found");
  EXPECT_EQ(found.value("submissions_without_user", -1), 3);
  EXPECT_EQ(found.value("submissions_without_activity", -1), 1);
  EXPECT_EQ(found.value("points_without_user", -1), 4);
  EXPECT_EQ(found.value("attachments_without_submission", -1), 2);
  EXPECT_EQ(r.step_end("submissions")["result"].value("deleted", 0), 4);
  EXPECT_EQ(r.step_end("submission_attachments")["result"].value("deleted", 0), 4);  // 2 + 2 of deleted submissions
  EXPECT_EQ(r.note("orphans cleaned up").value("backed_up", 0), 12);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM orphaned_data_backup"), "12");

  // ...after which the recovery check passes.
  expect_succeeded(run("troubleshoot.recovery_check", {}, &db));
}

TEST_F(Shipped, OrphansRunOnACleanDatabaseSkipsTheCleanup) {
  fixture_db db("troubleshoot/recovered.sql");
  auto r = run("troubleshoot.orphans", {}, &db);
  expect_succeeded(r);
  for (const char* s : {"submissions", "points_ledger", "submission_attachments"})
    EXPECT_EQ(r.step_end(s).value("status", ""), "skipped") << s;
  EXPECT_EQ(db.scalar("SELECT count(*) FROM orphaned_data_backup"), "0");
}

TEST_F(Shipped, DuplicatesKeepTheLatestAndBackUpWhatTheyChange) {
  fixture_db db("troubleshoot/leaps.sql");
  auto r = run("troubleshoot.duplicates", {}, &db);
  expect_succeeded(r);
  EXPECT_EQ(r.note("duplicate LEARN submissions").value("users", 0), 2);
  EXPECT_EQ(r.note("duplicate external events").value("events", 0), 3);
  EXPECT_EQ(r.step_end("reject older LEARN submissions")["result"].value("rejected", 0), 2);
  EXPECT_EQ(r.step_end("remove points credited twice")["result"].value("deleted", 0), 3);
  // The latest LEARN submission of each participant is the live one.
  EXPECT_EQ(db.scalar("SELECT string_agg(id, ',' ORDER BY id) FROM submissions WHERE activity_code = 'LEARN' "
                      "AND user_id IN ('user_01', 'user_02') AND status <> 'REJECTED'"),
            "sub_LEARN_user_01_again,sub_LEARN_user_02_again");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM duplicate_data_backup"), "5");
  EXPECT_EQ(steps_with_rollback("troubleshoot.duplicates"),
            (std::set<std::string>{"cleanup/reject older LEARN submissions", "cleanup/remove points credited twice"}));
}

TEST_F(Shipped, LeaderboardIsRefreshedOnlyWhenItDiffers) {
  fixture_db db("troubleshoot/leaps.sql");
  auto r = run("troubleshoot.leaderboard", {}, &db);
  expect_succeeded(r);
  EXPECT_EQ(r.note("leaderboard differences").value("participants", 0), 5);
  EXPECT_EQ(r.step_end("refresh leaderboard").value("status", ""), "succeeded");
  auto again = run("troubleshoot.leaderboard", {}, &db);
  expect_succeeded(again);
  EXPECT_EQ(again.note("leaderboard differences").value("participants", -1), 0);
  EXPECT_EQ(again.step_end("refresh leaderboard").value("status", ""), "skipped");
}

}  // namespace
