// Seed 003 beyond its decision tree (tests/runbooks/seed003_watch_test.cpp has that), run with
// the real binary: the pre-flight the unique indexes need (duplicates, exact or
// case-insensitive; a transaction the CONCURRENTLY builds would wait for), the performance
// baseline compared after the migration, the post-rollback watch, and the weekly and monthly
// reviews with their schedules.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <regex>
#include <thread>

#include "engine/db/connection.hpp"
#include "tests/runbooks/shipped_support.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb::testing::shipped;
using namespace std::chrono_literals;
using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

const std::string k_config = k_shipped + "/migration/organizations_import_fix.config";
const std::vector<std::string> k_short_watch = {"--config", k_config, "--param", "watch_for=1s", "--param",
                                                "watch_every=1s"};

class Seed003Cli : public ::testing::Test {
 protected:
  temp_dir dir{"rb-seed003-cli"};
  cli_sandbox cli{dir.path()};

  void TearDown() override {
    if (std::filesystem::exists(cli.audit_log())) {
      EXPECT_EQ(cli.run({"audit", "verify"}, {{"RUNBOOK_PATH", k_shipped}}).exit_code, 0);
    }
  }

  static std::vector<std::string> decisions(const run_result& r) {
    std::vector<std::string> out;
    for (const auto& d : r.events("decision")) out.push_back(d.value("trigger", "") + ": " + d.value("decision", ""));
    return out;
  }
  static bool ran_sql(const run_result& r, const std::string& text) {
    for (const auto& s : r.events("sql"))
      if (s.value("sql", "").find(text) != std::string::npos) return true;
    return false;
  }
};

// ---- the migration's pre-flight -----------------------------------------------------------

TEST_F(Seed003Cli, DuplicateOrganizationsFailThePreflightNamingThemBeforeAnyIndexIsBuilt) {
  // 'organization 7' differs from the fixture's 'Organization 7' (a partner) only in case;
  // 'Organization 10' (a partner) is there twice, exactly.
  fixture_db db("migration/organizations_import_fix.sql",
                "INSERT INTO organizations (name, type) VALUES ('organization 7 ', 'partner'), ('Organization 10', 'partner')");
  std::string before = db.rows_of({"organizations", "system_settings"});
  auto r = run(cli, "migration.organizations_import_fix", k_short_watch, db.dsn);

  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  EXPECT_EQ(r.outcome.value("failed_step", ""), "baseline/no duplicate organizations") << r.describe();
  std::string message = r.outcome["error"].value("message", "");
  EXPECT_NE(message.find("2 groups of active organizations share a name and type"), std::string::npos) << message;
  EXPECT_NE(message.find("partner 'organization 10' (10 'Organization 10', 342 'Organization 10', exact)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("partner 'organization 7' (7 'Organization 7', 341 'organization 7 ', differing in case or spaces)"),
            std::string::npos)
      << message;
  EXPECT_EQ(r.note("duplicate organizations").value("groups", 0), 2);
  EXPECT_FALSE(ran_sql(r, "CREATE UNIQUE INDEX")) << "no index build was tried";
  EXPECT_TRUE(r.events("rollback.end").empty()) << "nothing had been changed, so nothing is undone";
  EXPECT_EQ(db.rows_of({"organizations", "system_settings"}), before);
}

TEST_F(Seed003Cli, ALongOpenTransactionFailsThePreflightTheIndexBuildsWouldWaitForIt) {
  fixture_db db("migration/organizations_import_fix.sql");
  rb::db::connection importer({db.dsn, "importer", "importer"});
  importer.exec("BEGIN");
  importer.exec("SELECT count(*) FROM organizations");
  // Until the server has seen the transaction open for longer than max_transaction_age.
  rb::db::connection admin({db.dsn, "admin", "seed003_test"});
  bool old_enough = false;
  for (int i = 0; i < 1000 && !old_enough; ++i) {
    old_enough = admin.exec("SELECT 1 FROM pg_stat_activity WHERE application_name = 'importer' "
                            "AND now() - xact_start > interval '1.2 s'")
                     .rows.size() == 1;
    if (!old_enough) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(old_enough);
  auto args = k_short_watch;
  args.insert(args.end(), {"--param", "max_transaction_age=1s"});
  auto r = run(cli, "migration.organizations_import_fix", args, db.dsn);
  importer.exec("ROLLBACK");

  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  EXPECT_EQ(r.outcome.value("failed_step", ""), "baseline/no transaction the index builds would wait for");
  std::string message = r.outcome["error"].value("message", "");
  EXPECT_NE(message.find("1 transaction(s) open longer than 1 seconds"), std::string::npos) << message;
  EXPECT_NE(message.find("the CONCURRENTLY index builds would wait for them"), std::string::npos) << message;
  // The plan's connection monitoring named the importer's session.
  bool importer_seen = false;
  json sessions = r.note("sessions on organizations");
  for (const auto& s : sessions["sessions"])
    importer_seen = importer_seen || s.value("application_name", "") == "importer";
  EXPECT_TRUE(importer_seen) << r.note("sessions on organizations").dump();
  EXPECT_FALSE(ran_sql(r, "CREATE UNIQUE INDEX"));
  EXPECT_EQ(db.scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'organizations'"), "2");
}

// ---- the performance baseline -------------------------------------------------------------

TEST_F(Seed003Cli, ASlowerBaselineQueryAfterTheMigrationIsAFindingAuditedAndSentAsAWarning) {
  // The table grows a thousandfold while the migration runs: the test's statement trigger adds
  // 300,000 active customers when the runbook's import test inserts. The plan's baseline query
  // (active customers) reads them all afterwards; soft-deleted rows would not slow it: the new
  // partial unique index serves it. (A server of its own: the pre-flight refuses
  // while any session of the server waits on a lock.)
  fixture_db db("migration/organizations_import_fix.sql", R"sql(
    CREATE FUNCTION grow() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF pg_trigger_depth() = 1 THEN
        INSERT INTO organizations (name, type) SELECT 'Grown ' || g, 'customer' FROM generate_series(1, 300000) g;
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER grow BEFORE INSERT ON organizations FOR EACH STATEMENT EXECUTE FUNCTION grow();)sql",
                rb::testing::private_cluster());
  auto r = run(cli, "migration.organizations_import_fix", k_short_watch, db.dsn);

  // A finding, not a failure: nothing is undone; the closing checklist's criterion fails, so the
  // run ends succeeded_with_failures (exit 4).
  EXPECT_EQ(r.proc.exit_code, 4) << r.describe();
  EXPECT_EQ(r.status(), "succeeded_with_failures") << r.describe();
  EXPECT_TRUE(r.events("rollback.start").empty());
  bool criterion_failed = false;
  for (const auto& i : r.events("checklist.item"))
    if (i.value("step", "") == "no performance degradation over 10%") criterion_failed = i.value("outcome", "") == "failed";
  EXPECT_TRUE(criterion_failed) << r.describe();
  json found = r.note("performance degraded");
  ASSERT_TRUE(found.is_object()) << r.describe();
  EXPECT_EQ(found.value("degraded", false), true);
  EXPECT_GT(found.value("change", 0.0), 0.10) << found.dump();
  EXPECT_GT(found.value("after_ms", 0.0), found.value("before_ms", 0.0)) << found.dump();
  EXPECT_EQ(r.note("organizations baseline")["query_runs_ms"].size(), 5u) << "the plan: run several times";
  EXPECT_TRUE(r.note("performance within the baseline").is_null());
  // The warning went out on the example config's team channel.
  bool warned = false;
  for (const auto& a : r.events("alert.sent"))
    warned = warned || (a.value("severity", "") == "warning" && a.value("channel", "") == "team");
  EXPECT_TRUE(warned) << r.describe();
  EXPECT_TRUE(std::regex_search(r.describe(), std::regex("alert \\[warning\\] CRITICAL: Migration Issue .*\\n +- Problem: "
                                                         "Organizations Import Fix: the plan's baseline query is [0-9]+% "
                                                         "slower after the migration")))
      << r.describe();
}

TEST_F(Seed003Cli, AnUnchangedTableKeepsTheBaselinePerformance) {
  auto r = run(cli, "migration.organizations_import_fix", k_short_watch);
  ASSERT_EQ(r.proc.exit_code, 0) << r.describe();
  json same = r.note("performance within the baseline");
  ASSERT_TRUE(same.is_object()) << r.describe();
  EXPECT_EQ(same.value("degraded", true), false);
  EXPECT_GT(same.value("before_ms", 0.0), 0.0);
  json sessions = r.note("sessions on organizations");
  EXPECT_TRUE(sessions.is_object());
  // The plan's success validation checklist closes the run: the database's answers checked, the
  // people's questions unconfirmed without a terminal (--yes never answers for a person).
  auto end = r.events("checklist.end");
  ASSERT_EQ(end.size(), 1u) << r.describe();
  EXPECT_EQ(end[0].value("phase", ""), "success validation");
  EXPECT_EQ(end[0].value("passed", 0), 7) << end[0].dump();
  EXPECT_EQ(end[0].value("failed", -1), 0) << end[0].dump();
  EXPECT_EQ(end[0].value("unconfirmed", 0), 9) << end[0].dump();
  std::map<std::string, std::string> outcome;
  for (const auto& i : r.events("checklist.item")) outcome[i.value("step", "")] = i.value("outcome", "");
  EXPECT_EQ(outcome["import operations succeed with ON CONFLICT"], "passed");
  EXPECT_EQ(outcome["no performance degradation over 10%"], "passed");
  EXPECT_EQ(outcome["support team notified of the changes"], "unconfirmed");
  // The decision tree reads the connections in use beside the lock metrics.
  bool read = false;
  for (const auto& s : r.events("sample")) read = read || s["values"].contains("connections_used");
  for (const auto& s : r.events("watch.start")) read = read || s.dump().find("connections_used") != std::string::npos;
  EXPECT_TRUE(read);
}

// ---- after a rollback ---------------------------------------------------------------------

TEST_F(Seed003Cli, PostRollbackWatchSaysThe42P10ErrorsAreBackAndFindsNoCorruption) {
  auto r = run(cli, "monitor.organizations_import_rollback", {"--param", "watch_for=2s", "--param", "every=1s"});
  EXPECT_EQ(r.proc.exit_code, 0) << r.describe();
  EXPECT_EQ(decisions(r), std::vector<std::string>{"42P10 is back: fired"});
  json s = r.note("post-rollback monitoring");
  EXPECT_EQ(s.value("duplicates", -1), 0);
  EXPECT_EQ(s.value("constraints_left", -1), 0);
  EXPECT_NE(r.describe().find("No data corruption: plan the re-deployment with the fixes."), std::string::npos)
      << r.describe();
}

TEST_F(Seed003Cli, PostRollbackWatchEscalatesAnIndexLeftBehindAndDuplicatesThenFails) {
  // The rollback did not drop the exact-match index, and the importer wrote a case-insensitive
  // duplicate since: two findings, each escalated once; the run fails at its summary.
  fixture_db db("monitor/organizations_import_rollback.sql",
                "CREATE UNIQUE INDEX organizations_exact_name_type_active ON organizations (name, type) "
                "WHERE deleted_at IS NULL; INSERT INTO organizations (name, type) VALUES ('ORGANIZATION 7', 'partner')");
  dir.write("runbook.lua",
            "return { channels = { ops = { type = 'log' } }, default_channels = { 'ops' },\n"
            "  escalation = { db = { levels = { { after = '0m', notify = { 'ops' } } } } }, default_escalation = 'db' }\n");
  auto r = run(cli, "monitor.organizations_import_rollback", {"--param", "watch_for=2s", "--param", "every=1s"}, db.dsn);
  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  EXPECT_EQ(r.outcome.value("failed_step", ""), "summary/re-deployment notes");
  auto d = decisions(r);
  ASSERT_FALSE(d.empty()) << r.describe();
  EXPECT_EQ(d[0], "rollback incomplete: fired") << "the first trigger that holds acts";
  std::set<std::string> causes;
  for (const auto& rec : cli.records())
    if (rec.value("event", "") == "incident.open") causes.insert(rec.value("cause", ""));
  EXPECT_TRUE(causes.count("rollback incomplete")) << r.describe();
  json s = r.note("post-rollback monitoring");
  EXPECT_EQ(s.value("duplicates", 0), 1);
  EXPECT_EQ(s.value("constraints_left", 0), 1);
}

// ---- long-term monitoring -----------------------------------------------------------------

TEST_F(Seed003Cli, WeeklyReviewReportsTheTrendTheConstraintsAndTheBaselineComparison) {
  auto r = run(cli, "review.organizations_import_weekly", {"--param", "baseline_ms=0.001"});
  EXPECT_EQ(r.proc.exit_code, 0) << r.describe();
  json trend = r.note("import success rate trend");
  EXPECT_EQ(trend["days"].size(), 7u) << trend.dump();
  ASSERT_EQ(trend["below_target"].size(), 1u) << "the fixture's bad day, three days ago: " << trend.dump();
  json health = r.note("constraint health");
  for (const auto& c : health["checks"]) EXPECT_EQ(c.value("constraint_exists", false), true);
  json perf = r.note("performance");
  EXPECT_EQ(perf.value("degraded", false), true) << "slower than a 1 µs baseline: " << perf.dump();
  json review = r.note("weekly review");
  EXPECT_EQ(review["findings"].size(), 2u) << review.dump();
  EXPECT_FALSE(ran_sql(r, "INSERT") || ran_sql(r, "UPDATE") || ran_sql(r, "DELETE") || ran_sql(r, "CREATE"))
      << "read-only";
}

TEST_F(Seed003Cli, WeeklyReviewFailsWhenAConstraintIsGone) {
  fixture_db db("review/organizations_import.sql", "DROP INDEX unique_organization_name_type_ci");
  auto r = run(cli, "review.organizations_import_weekly", {}, db.dsn);
  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  EXPECT_EQ(r.outcome.value("failed_step", ""), "main/constraint health");
  EXPECT_NE(r.outcome["error"].value("message", "").find("case_insensitive index missing or invalid"), std::string::npos)
      << r.outcome.dump();
}

TEST_F(Seed003Cli, MonthlyReviewReportsIndexUsagePlansConstraintEffectivenessAndIdeas) {
  auto r = run(cli, "review.organizations_import_monthly");
  EXPECT_EQ(r.proc.exit_code, 0) << r.describe();
  std::set<std::string> indexes;
  json usage = r.note("index usage statistics");
  for (const auto& i : usage["indexes"]) indexes.insert(i.value("indexname", ""));
  EXPECT_TRUE(indexes.count("organizations_exact_name_type_active") && indexes.count("unique_organization_name_type_ci"))
      << r.note("index usage statistics").dump();
  EXPECT_TRUE(r.note("query plans").contains("importer_lookup"));
  json eff = r.note("constraint effectiveness");
  EXPECT_EQ(eff.value("errors_42p10", -1), 0);
  EXPECT_EQ(eff.value("duplicates_refused", 0), 3) << eff.dump();
  EXPECT_TRUE(r.note("optimizations to consider").is_object());
  EXPECT_TRUE(r.note("monthly review").is_object());
}

TEST_F(Seed003Cli, ReviewsAreScheduledWeeklyAndMonthly) {
  auto r = cli.run({"schedule", "--list", "--now", "2026-12-03T00:00:00Z"}, {{"RUNBOOK_PATH", k_shipped}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string list = std::regex_replace(r.out, std::regex(" +"), " ");
  for (const char* line : {"review.organizations_import_weekly - 0 6 * * mon UTC once 2026-12-07 06:00 UTC",
                           "review.organizations_import_monthly - 0 6 1 * * UTC once 2027-01-01 06:00 UTC"})
    EXPECT_NE(list.find(line), std::string::npos) << line << "\nnot in\n" << r.out;
}

}  // namespace
