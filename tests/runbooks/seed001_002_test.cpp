// Seeds 001 and 002, the parts beyond the migrations themselves, run for real: the guide's
// performance checks under EXPLAIN ANALYZE, a migration that is skipped when its table exists,
// the troubleshooting playbook (row level security, missing policies, an INVALID index left by
// a failed CREATE UNIQUE INDEX CONCURRENTLY), the monitoring queries as a watch alerting to a
// file, the maintenance window of the critical fixes, and the scheduled stuck-lock cleanup
// alerting a real webhook receiver.
#include <gtest/gtest.h>

#include <regex>

#include <ctime>
#include <filesystem>
#include <map>

#include "tests/runbooks/shipped_support.hpp"
#include "tests/support/receiver.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb::testing::shipped;
using rb::testing::cli_sandbox;
using rb::testing::receiver;
using rb::testing::temp_dir;

class Seed001 : public ::testing::Test {
 protected:
  temp_dir dir{"rb-seed001"};
  cli_sandbox cli{dir.path()};

  void TearDown() override {
    if (std::filesystem::exists(cli.audit_log())) {
      EXPECT_EQ(cli.run({"audit", "verify"}, {{"RUNBOOK_PATH", k_shipped}}).exit_code, 0);
    }
  }

  static std::vector<std::string> decisions(const run_result& r) {
    std::vector<std::string> out;
    for (const auto& d : r.events("decision")) out.push_back(d.value("trigger", ""));
    return out;
  }
};

using Seed002 = Seed001;

/// "HH:MM" of the UTC time `offset_minutes` from now (wrapping around midnight).
std::string utc_clock(int offset_minutes) {
  std::time_t t = std::time(nullptr) + offset_minutes * 60;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[8];
  std::strftime(buf, sizeof buf, "%H:%M", &tm);
  return buf;
}

// ---- seed 001: migrations, performance, troubleshooting ----------------------------------

TEST_F(Seed001, PlatformTablesChecksTheGuidesQueriesUnderExplainAnalyze) {
  fixture_db db("migration/platform_tables.sql");
  auto r = run(cli, "migration.platform_tables", {}, db.dsn);
  ASSERT_EQ(r.proc.exit_code, 0) << r.describe();
  json perf = r.note("query performance");
  ASSERT_EQ(perf["queries"].size(), 2u) << perf.dump();
  EXPECT_EQ(perf["queries"][0].value("query", ""), "conversation list");
  EXPECT_EQ(perf["queries"][0]["indexes"], json({"idx_conversations_tenant_archived_updated"})) << perf.dump();
  EXPECT_EQ(perf["queries"][1]["indexes"], json({"idx_messages_conversation_created"})) << perf.dump();
  for (const auto& q : perf["queries"]) {
    EXPECT_TRUE(q.value("uses_index", false)) << q.dump();
    EXPECT_GE(q.value("ms", -1.0), 0.0) << q.dump();
    EXPECT_LT(q.value("ms", 1e9), 50.0) << q.dump();
  }
  // The plans really were EXPLAIN ANALYZE's.
  int analyzed = 0;
  for (const auto& s : r.events("sql", "query performance"))
    analyzed += s.value("sql", "").rfind("EXPLAIN (ANALYZE, FORMAT JSON)", 0) == 0;
  EXPECT_EQ(analyzed, 2);
}

TEST_F(Seed001, PlatformTablesFailsAQueryOverItsTimeLimitAndUndoesTheMigrations) {
  fixture_db db("migration/platform_tables.sql");
  auto r = run(cli, "migration.platform_tables", {"--param", "max_query_ms=0"}, db.dsn);
  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  EXPECT_EQ(r.status(), "rolled_back");
  EXPECT_EQ(r.outcome.value("failed_step", ""), "verify/query performance");
  EXPECT_NE(r.outcome["error"].value("message", "").find("conversation list took"), std::string::npos) << r.outcome.dump();
  EXPECT_NE(r.outcome["error"].value("message", "").find("over the 0.00 ms limit"), std::string::npos) << r.outcome.dump();
  EXPECT_EQ(db.scalar("SELECT to_regclass('public.conversations') IS NULL"), "t");
}

// Troubleshooting "Migration Fails with 'Relation Already Exists'": skip the migration.
TEST_F(Seed001, PlatformTablesSkipsAMigrationWhoseTableExists) {
  fixture_db db("migration/platform_tables.sql");
  ASSERT_EQ(run(cli, "migration.platform_tables", {}, db.dsn).proc.exit_code, 0);
  std::string rows = db.scalar("SELECT count(*) FROM public.conversations");
  auto again = run(cli, "migration.platform_tables", {}, db.dsn);
  ASSERT_EQ(again.proc.exit_code, 0) << again.describe();
  const std::vector<std::pair<std::string, std::string>> migrations = {
      {"003 conversations", "relation public.conversations already exists: migration 003 was applied before"},
      {"004 messages", "relation public.messages already exists: migration 004 was applied before"},
      {"005 feedback", "relation public.feedback already exists: migration 005 was applied before"},
      {"006 usage_metrics", "relation public.usage_metrics already exists: migration 006 was applied before"}};
  for (const auto& [step, reason] : migrations) {
    json end = again.step_end(step, "migrate");
    EXPECT_EQ(end.value("status", ""), "skipped") << end.dump();
    EXPECT_EQ(end.value("reason", ""), reason);
  }
  for (const auto& e : again.events("sql")) EXPECT_NE(e.value("sqlstate", ""), "42P07") << e.dump();
  EXPECT_EQ(again.step_end("RLS policies").value("status", ""), "succeeded");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM public.conversations"), rows);
}

TEST_F(Seed001, TroubleshootPlatformFixesRowLevelSecurityAndRebuildsAnInvalidIndex) {
  fixture_db db("troubleshoot/platform.sql");
  fixture_db intact("maintenance/platform.sql");
  {
    // A unique index built concurrently over a duplicate fails and stays behind INVALID; the
    // duplicate is removed afterwards, so a rebuild can succeed.
    rb::db::connection c({db.dsn, "test", "seed001_test"});
    c.exec("INSERT INTO conversations (tenant_id, user_id, title) "
           "SELECT tenant_id, user_id, title FROM conversations WHERE title = 'Conversation 1'");
    EXPECT_ANY_THROW(c.exec("CREATE UNIQUE INDEX CONCURRENTLY idx_conversations_tenant_title ON conversations (tenant_id, title)"));
    c.exec("DELETE FROM conversations WHERE id = (SELECT id FROM conversations WHERE title = 'Conversation 1' "
           "ORDER BY created_at DESC LIMIT 1)");
  }
  ASSERT_EQ(db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_conversations_tenant_title'::regclass"), "f");

  // Without --yes and without a terminal, the diagnosis runs, no fix does, and the checks
  // after them say what is still wrong (exit 4: succeeded with failures).
  auto refused = cli.run({"run", "troubleshoot.platform", "--dsn", db.dsn}, {{"RUNBOOK_PATH", k_shipped}});
  EXPECT_EQ(refused.exit_code, 4) << refused.out << refused.err;
  EXPECT_NE(refused.out.find("row level security is off on feedback"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("invalid indexes: idx_conversations_tenant_title"), std::string::npos) << refused.out;
  EXPECT_EQ(db.scalar("SELECT relrowsecurity FROM pg_class WHERE oid = 'public.feedback'::regclass"), "f");
  EXPECT_EQ(db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_conversations_tenant_title'::regclass"), "f");
  for (const char* fix : {"enable row level security", "re-create missing policies", "rebuild invalid indexes"}) {
    auto ends = cli.events("step.end", fix);
    ASSERT_EQ(ends.size(), 1u) << fix;
    EXPECT_EQ(ends[0].value("status", ""), "skipped") << ends[0].dump();
  }

  auto r = run(cli, "troubleshoot.platform", {}, db.dsn);
  ASSERT_EQ(r.proc.exit_code, 0) << r.describe();
  json rls = r.note("row level security");
  EXPECT_EQ(rls["rls_disabled"], json({"feedback"})) << rls.dump();
  EXPECT_EQ(rls["missing_policies"], json::parse(R"([{"policy":"usage_metrics_delete","table":"usage_metrics"}])"))
      << rls.dump();
  json invalid = r.note("invalid indexes");
  ASSERT_EQ(invalid.value("count", 0), 1) << invalid.dump();
  EXPECT_EQ(invalid["indexes"][0].value("index", ""), "idx_conversations_tenant_title");
  EXPECT_NE(invalid["indexes"][0].value("definition", "").find("CREATE UNIQUE INDEX idx_conversations_tenant_title"),
            std::string::npos);
  // Each fix was confirmed, and recorded what it changed before changing it.
  EXPECT_EQ(r.events("confirm").size(), 3u);
  EXPECT_EQ(r.note("enabling row level security")["tables"], json({"feedback"}));
  EXPECT_EQ(r.note("rebuilding invalid indexes")["indexes"][0].value("index", ""), "idx_conversations_tenant_title");
  bool reindexed = false;
  for (const auto& s : r.events("sql", "rebuild invalid indexes"))
    reindexed = reindexed || (s.value("sql", "") == "REINDEX INDEX CONCURRENTLY idx_conversations_tenant_title" &&
                              !s.contains("sqlstate"));
  EXPECT_TRUE(reindexed);
  for (const char* s : {"row level security is on", "every policy is there", "no invalid indexes",
                        "queries on their indexes, in time"})
    EXPECT_EQ(r.step_end(s, "check again").value("status", ""), "succeeded") << s;

  // The database: RLS on, the policy back exactly as migration 006 defines it, the index valid.
  EXPECT_EQ(db.scalar("SELECT relrowsecurity FROM pg_class WHERE oid = 'public.feedback'::regclass"), "t");
  const std::string policies = "SELECT string_agg(policyname || ' ' || cmd || ' ' || coalesce(qual, '-') || ' ' || "
                               "coalesce(with_check, '-'), E'\\n' ORDER BY policyname) FROM pg_policies";
  EXPECT_EQ(db.scalar(policies), intact.scalar(policies));
  EXPECT_EQ(db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_conversations_tenant_title'::regclass"), "t");

  // Run again: nothing left to fix.
  auto again = run(cli, "troubleshoot.platform", {}, db.dsn);
  ASSERT_EQ(again.proc.exit_code, 0) << again.describe();
  EXPECT_EQ(again.step_end("enable row level security").value("reason", ""), "no table with row level security off");
  EXPECT_EQ(again.step_end("re-create missing policies").value("reason", ""), "no missing policy");
  EXPECT_EQ(again.step_end("rebuild invalid indexes").value("reason", ""), "no invalid index");
}

// "Slow Query Performance": a query that cannot use its index is a finding it cannot fix; the
// run says so (succeeded with failures, exit 4) and names the query and the plan.
TEST_F(Seed001, TroubleshootPlatformNamesAQueryThatLostItsIndex) {
  fixture_db db("troubleshoot/platform.sql", "DROP INDEX public.idx_messages_conversation_created");
  auto r = run(cli, "troubleshoot.platform", {}, db.dsn);
  EXPECT_EQ(r.proc.exit_code, 4) << r.describe();
  EXPECT_EQ(r.status(), "succeeded_with_failures");
  json perf = r.note("query performance");
  EXPECT_EQ(perf["queries"][0].value("ok", false), true) << perf.dump();
  EXPECT_EQ(perf["queries"][1].value("uses_index", true), false) << perf.dump();
  json failed = r.step_end("queries on their indexes, in time", "check again");
  EXPECT_EQ(failed.value("status", ""), "failed");
  EXPECT_NE(failed.dump().find("conversation messages does not use idx_messages_conversation_created"), std::string::npos)
      << failed.dump();
  EXPECT_EQ(r.step_end("row level security is on", "check again").value("status", ""), "succeeded");
}

// Post-Migration Tasks 5. "Set Up Monitoring" as a watch: alerts once each when the last day's
// ratings turn negative and when a tenant passes its weekly token budget.
TEST_F(Seed001, PlatformWatchAlertsOnNegativeSentimentAndATenantOverBudget) {
  std::filesystem::path file = dir.path() / "alerts.jsonl";
  dir.write("runbook.lua", "return { channels = { ops = { type = 'file', path = '" + file.string() +
                               "' } }, default_channels = { 'ops' } }\n");
  fixture_db db("monitor/platform.sql",
                "INSERT INTO feedback (message_id, user_id, tenant_id, rating) "
                "SELECT m.id, c.user_id, c.tenant_id, -1 FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                "WHERE m.content = 'message 4' ORDER BY c.created_at DESC LIMIT 12; "
                "SELECT increment_usage_metrics('11111111-1111-4111-8111-111111111111', "
                "'aaaaaaaa-0000-4000-8000-000000000001', CURRENT_DATE, 1, 2000000, 20);");
  const std::vector<std::string> fast = {"--param", "watch_for=600ms", "--param", "every=100ms"};
  auto r = run(cli, "monitor.platform", fast, db.dsn);
  ASSERT_EQ(r.proc.exit_code, 0) << r.describe();
  EXPECT_EQ(decisions(r), (std::vector<std::string>{"sentiment turned negative", "tenant over token budget"}));
  std::string alerts = rb::testing::read_file(file);
  EXPECT_NE(alerts.find("Feedback sentiment turned negative"), std::string::npos) << alerts;
  EXPECT_NE(alerts.find("more tokens in 7 days than its budget"), std::string::npos) << alerts;
  ASSERT_FALSE(r.events("sample").empty());
  json values = r.events("sample")[0]["values"];
  EXPECT_EQ(values.value("feedback", 0), 12) << values.dump();
  EXPECT_EQ(values.value("active_users", 0), 1) << values.dump();

  // The fixture as it is: quiet.
  fixture_db calm("monitor/platform.sql");
  auto ok = run(cli, "monitor.platform", fast, calm.dsn);
  ASSERT_EQ(ok.proc.exit_code, 0) << ok.describe();
  EXPECT_TRUE(decisions(ok).empty());
}

// ---- seed 002: maintenance window, stuck locks ----------------------------------------------

TEST_F(Seed002, CriticalFixesRunsOnlyInsideItsMaintenanceWindow) {
  fixture_db db("migration/critical_fixes.sql");
  const std::string version_column = "SELECT count(*) FROM information_schema.columns "
                                     "WHERE table_name = 'messenger_conversations' AND column_name = 'version'";
  const std::string backups = "backup_dir=" + (dir.path() / "backups").string();
  std::string later = utc_clock(60) + "-" + utc_clock(120);
  auto outside = run(cli, "migration.critical_fixes", {"--param", "window=" + later, "--param", backups}, db.dsn);
  EXPECT_EQ(outside.proc.exit_code, 0) << outside.describe();
  EXPECT_EQ(outside.status(), "skipped") << outside.describe();
  EXPECT_NE(outside.outcome.value("skip_reason", "").find("outside the maintenance window " + later + " UTC"),
            std::string::npos)
      << outside.outcome.dump();
  EXPECT_TRUE(outside.events("step.start").empty());
  EXPECT_EQ(db.scalar(version_column), "0");

  std::string now = utc_clock(-60) + "-" + utc_clock(60);
  auto inside = run(cli, "migration.critical_fixes", {"--param", "window=" + now, "--param", backups}, db.dsn);
  EXPECT_EQ(inside.proc.exit_code, 0) << inside.describe();
  EXPECT_EQ(inside.status(), "succeeded");
  EXPECT_EQ(db.scalar(version_column), "1");
  // It closes with the guide's Migration Checklist: what the database can tell is checked, the
  // rest is for a person on a terminal (--yes never answers for one), and stays unconfirmed.
  auto end = inside.events("checklist.end");
  ASSERT_EQ(end.size(), 1u) << inside.describe();
  EXPECT_EQ(end[0].value("passed", -1), 5) << end[0].dump();
  EXPECT_EQ(end[0].value("failed", -1), 0) << end[0].dump();
  EXPECT_EQ(end[0].value("unconfirmed", -1), 12) << end[0].dump();
  std::map<std::string, std::string> items;
  for (const auto& i : inside.events("checklist.item")) items[i.value("step", "")] = i.value("outcome", "");
  EXPECT_EQ(items["Backed up database"], "passed");
  EXPECT_EQ(items["Tested sync lock (concurrent prevention)"], "passed");
  EXPECT_EQ(items["Trained team on new features"], "unconfirmed");

  // A window that is no window is a broken guard: the run fails, saying why.
  auto bad = run(cli, "migration.critical_fixes", {"--param", "window=2am-4am", "--param", backups}, db.dsn);
  EXPECT_NE(bad.proc.exit_code, 0);
  EXPECT_NE(bad.describe().find("maintenance window '2am-4am' is not HH:MM-HH:MM or 'any'"), std::string::npos)
      << bad.describe();
}

TEST_F(Seed002, SyncLocksCleanupKeepsACopyDeletesAndAlertsAWebhook) {
  receiver hook{receiver::kind::http, dir.path()};
  dir.write("runbook.lua", "return { channels = { hooks = { type = 'webhook', url = '" + hook.url() +
                               "' } }, default_channels = { 'hooks' } }\n");
  fixture_db db("maintenance/sync_locks.sql");
  const std::string locks = "SELECT string_agg(page_id || ' ' || locked_by || ' ' || locked_at || ' ' || expires_at, ', ' "
                            "ORDER BY page_id) FROM sync_locks";
  std::string before = db.scalar(locks);

  // Run by hand without --yes and without a terminal: the deletion is declined and skipped,
  // the locks stay, nobody is alerted, and the run still reports what it found.
  auto declined = cli.run({"run", "maintenance.sync_locks", "--dsn", db.dsn}, {{"RUNBOOK_PATH", k_shipped}});
  EXPECT_EQ(declined.exit_code, 0) << declined.out << declined.err;
  ASSERT_EQ(cli.events("step.end", "delete expired locks").size(), 1u);
  EXPECT_EQ(cli.events("step.end", "delete expired locks")[0].value("status", ""), "skipped");
  EXPECT_EQ(db.scalar(locks), before);

  auto r = run(cli, "maintenance.sync_locks", {}, db.dsn);
  ASSERT_EQ(r.proc.exit_code, 0) << r.describe();
  EXPECT_EQ(r.note("stuck sync locks").value("count", 0), 2);
  EXPECT_EQ(r.step_end("delete expired locks")["result"].value("deleted", 0), 2);
  EXPECT_EQ(db.scalar("SELECT string_agg(page_id, ',') FROM sync_locks"), "page_syncing");
  std::string id = r.outcome.value("run", "");
  EXPECT_EQ(db.scalar("SELECT string_agg(page_id || ':' || locked_by, ',' ORDER BY page_id) FROM sync_locks_expired "
                      "WHERE removed_by_run = '" + id + "'"),
            "page_crashed_1:sync-a1,page_crashed_2:sync-b7");
  ASSERT_TRUE(hook.wait_for(1));
  auto requests = hook.requests();
  ASSERT_EQ(requests.size(), 1u);
  json body = json::parse(requests[0].value("body", ""), nullptr, false);
  ASSERT_TRUE(body.is_object()) << requests[0].dump();
  EXPECT_EQ(body["alerts"][0]["annotations"].value("summary", ""),
            "2 stuck sync lock(s) removed: page_crashed_1, page_crashed_2")
      << body.dump();
  EXPECT_EQ(body["alerts"][0]["labels"].value("severity", ""), "warning") << body.dump();

  // Five minutes later there is nothing to clean: no delete, no alert.
  auto again = run(cli, "maintenance.sync_locks", {}, db.dsn);
  ASSERT_EQ(again.proc.exit_code, 0) << again.describe();
  EXPECT_EQ(again.step_end("delete expired locks").value("reason", ""), "no expired sync locks");
  EXPECT_EQ(again.step_end("alert")["result"].value("alerted", true), false);
  EXPECT_EQ(hook.requests().size(), 1u);

  // Undoing the first run puts the locks back exactly, from the copy.
  auto undo = cli.run({"rollback", id, "--dsn", db.dsn, "--yes"}, {{"RUNBOOK_PATH", k_shipped}});
  EXPECT_EQ(undo.exit_code, 0) << undo.out << undo.err;
  EXPECT_EQ(db.scalar(locks), before);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM sync_locks_expired"), "0");
}

TEST_F(Seed002, SyncLocksCleanupIsScheduledEveryFiveMinutes) {
  auto r = cli.run({"schedule", "--list", "--now", "2026-12-03T00:01:00Z"}, {{"RUNBOOK_PATH", k_shipped}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // (columns are as wide as their longest entry: compared with single spaces)
  std::string list = std::regex_replace(r.out, std::regex(" +"), " ");
  EXPECT_NE(list.find("maintenance.sync_locks - */5 * * * * UTC skip 2026-12-03 00:05 UTC 2026-12-03T00:05:00Z"),
            std::string::npos)
      << r.out;
}

}  // namespace
