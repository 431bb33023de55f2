// Seeds 000 and 002 as runbooks, run for real: backups taken and verified, migration_log rows
// for every step (START, SUCCESS, ERROR, ROLLBACK), the complete rollback restoring the rows
// from the backup, the re-migration of missing rows, the health function's tiers, the
// error-rate and post-deploy watches alerting through a real file channel and escalating
// through a real policy, and the ten success criteria of seed 002.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/runbooks/shipped_support.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb::testing::shipped;
using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

const std::vector<std::string> k_seed000_tables = {"users",         "conversations", "messages",
                                                   "message_reactions", "user_queries", "bot_responses"};

class Seed : public ::testing::Test {
 protected:
  temp_dir dir{"rb-seed"};
  cli_sandbox cli{dir.path()};

  void TearDown() override {
    if (std::filesystem::exists(cli.audit_log())) {
      EXPECT_EQ(cli.run({"audit", "verify"}, {{"RUNBOOK_PATH", k_shipped}}).exit_code, 0);
    }
  }

  std::string backups() const { return (dir.path() / "backups").string(); }

  /// runbook.lua: alerts to a file channel, and (when `policy`) an escalation policy that
  /// notifies the same channel at level 1.
  std::filesystem::path alerts_to_file(bool policy) {
    std::filesystem::path file = dir.path() / "alerts.jsonl";
    dir.write("runbook.lua", "return {\n  channels = { ops = { type = 'file', path = '" + file.string() +
                                 "' } },\n  default_channels = { 'ops' },\n" +
                                 (policy ? "  escalation = { database = { levels = { { after = '0m', notify = { 'ops' } },\n"
                                           "                                          { after = '15m', notify = { 'ops' } } } } },\n"
                                           "  default_escalation = 'database',\n"
                                         : "") +
                                 "}\n");
    return file;
  }

  static std::vector<json> lines(const std::filesystem::path& file) {
    std::vector<json> out;
    if (!std::filesystem::exists(file)) return out;
    std::string text = rb::testing::read_file(file);
    std::size_t at = 0;
    while (at < text.size()) {
      std::size_t end = text.find('\n', at);
      if (end == std::string::npos) end = text.size();
      if (end > at) out.push_back(json::parse(text.substr(at, end - at), nullptr, false));
      at = end + 1;
    }
    return out;
  }

  static std::vector<std::string> decisions(const run_result& r) {
    std::vector<std::string> out;
    for (const auto& d : r.events("decision")) out.push_back(d.value("trigger", ""));
    return out;
  }
};

// ---- seed 000 ----------------------------------------------------------------------------

TEST_F(Seed, CentralizedBacksUpLogsEveryStepAndItsBackupRestoresTheRows) {
  fixture_db db("migration/centralized.sql");
  std::string before = db.rows_of(k_seed000_tables);
  auto r = run(cli, "migration.centralized", {"--param", "backup_dir=" + backups()}, db.dsn);
  ASSERT_EQ(r.proc.exit_code, 0) << r.describe();

  // Two backups, each verified by a restore; the files are where the results say.
  json full = r.step_end("full backup").value("result", json());
  json critical = r.step_end("critical data backup").value("result", json());
  for (const json& b : {full, critical}) {
    std::string file = b.value("file", "");
    ASSERT_TRUE(std::filesystem::exists(file)) << b.dump();
    EXPECT_EQ(std::filesystem::file_size(file), b.value("size", 0u)) << b.dump();
    EXPECT_EQ(file.rfind(backups(), 0), 0u) << file;
  }
  EXPECT_EQ(full.value("data_only", true), false);
  EXPECT_EQ(critical.value("data_only", false), true);
  EXPECT_EQ(critical["tables"], json({"messages", "conversations", "message_reactions"}));
  int verified = 0;
  for (const auto& n : r.events("note")) verified += n.value("message", "") == "backup verified";
  EXPECT_EQ(verified, 2);

  // migration_log: START and SUCCESS of every step, with rows and timings.
  EXPECT_EQ(db.scalar("SELECT string_agg(step_name || ':' || status, ',' ORDER BY id) FROM migration_log"),
            "users:START,users:SUCCESS,conversation owners:START,conversation owners:SUCCESS,"
            "user queries:START,user queries:SUCCESS,bot responses:START,bot responses:SUCCESS,"
            "idx_conversation_timeline:START,idx_conversation_timeline:SUCCESS");
  EXPECT_EQ(db.scalar("SELECT string_agg(step_name || '=' || records_affected, ',' ORDER BY id) FROM migration_log "
                      "WHERE status = 'SUCCESS' AND records_affected IS NOT NULL"),
            "users=7,conversation owners=12,user queries=60,bot responses=60");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM migration_log WHERE status = 'SUCCESS' AND execution_time_ms >= 0"), "5");
  EXPECT_EQ(db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_conversation_timeline'::regclass"), "t");
  ASSERT_NE(db.rows_of(k_seed000_tables), before);

  // The complete rollback: refused without a confirmation, then the rows are the backup's.
  auto refused = cli.run({"run", "migration.centralized_restore", "--dsn", db.dsn, "--param",
                          "dump=" + full.value("file", "")},
                         {{"RUNBOOK_PATH", k_shipped}});
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  auto restore = run(cli, "migration.centralized_restore", {"--param", "dump=" + full.value("file", "")}, db.dsn);
  ASSERT_EQ(restore.proc.exit_code, 0) << restore.describe();
  EXPECT_EQ(restore.events("confirm").size(), 1u);
  EXPECT_EQ(db.rows_of(k_seed000_tables), before);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM rollback_backup_users"), "8");  // the state it replaced, for analysis
  EXPECT_EQ(restore.note("rollback completed").value("messages", 0), 120);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM migration_log WHERE step_name = 'complete_rollback' AND status = 'ROLLBACK'"), "1");
}

TEST_F(Seed, CentralizedRestoreRehearsesGreenKeepingItsSnapshotAndLog) {
  // The backup the migration takes is what the complete rollback restores; rehearsed on the
  // migrated fixture, the restore's own undo (the rows put back from its snapshot) leaves the
  // database as it was but for the snapshot tables and the ROLLBACK row it keeps on purpose.
  fixture_db db("migration/centralized.sql");
  auto m = run(cli, "migration.centralized", {"--param", "backup_dir=" + backups()}, db.dsn);
  ASSERT_EQ(m.proc.exit_code, 0) << m.describe();
  std::string dump = m.step_end("full backup").value("result", json()).value("file", "");
  auto r = cli.run({"rehearse", "migration.centralized_restore", "--sandbox", "--json", "--param", "dump=" + dump},
                   {{"RUNBOOK_PATH", k_shipped}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["forward"], "succeeded") << j.dump();
  EXPECT_EQ(j["passed"], true) << j.dump();
  EXPECT_TRUE(j["diff"].empty()) << j.dump();
  std::string notes = j["notes"].dump();
  EXPECT_NE(notes.find("table rollback_backup_users added (a log table of the runbook"), std::string::npos) << notes;
  EXPECT_NE(notes.find("table migration_log: 1 row more"), std::string::npos) << notes;
}

TEST_F(Seed, CentralizedLogsTheErrorOfAFailingStepOutsideItsTransaction) {
  fixture_db db("migration/centralized.sql", "ALTER TABLE users ADD CONSTRAINT no_u03 CHECK (platform_user_id <> 'U03')");
  auto r = run(cli, "migration.centralized", {"--param", "backup_dir=" + backups()}, db.dsn);
  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  EXPECT_EQ(r.status(), "rolled_back");
  EXPECT_EQ(r.outcome.value("failed_step", ""), "migrate/users");
  // The transaction was rolled back; the log rows, written on their own connection, were not.
  EXPECT_EQ(db.scalar("SELECT count(*) FROM users"), "0");
  EXPECT_EQ(db.scalar("SELECT string_agg(step_name || ':' || status, ',' ORDER BY id) FROM migration_log"),
            "users:START,users:ERROR");
  EXPECT_EQ(db.scalar("SELECT error_details->>'sqlstate' FROM migration_log WHERE status = 'ERROR'"), "23514");
  EXPECT_NE(db.scalar("SELECT error_details->>'error_message' FROM migration_log WHERE status = 'ERROR'").find("no_u03"),
            std::string::npos);
  EXPECT_EQ(db.scalar("SELECT execution_time_ms >= 0 AND records_affected = 0 FROM migration_log WHERE status = 'ERROR'"), "t");
}

TEST_F(Seed, CentralizedRollbackIsLoggedAndLeavesTheRowsAsTheyWere) {
  fixture_db db("migration/centralized.sql");
  std::string before = db.rows_of(k_seed000_tables);
  // An error rate of 6.7% against a limit of 1%: the verify phase fails after everything committed.
  auto r = run(cli, "migration.centralized", {"--param", "backup_dir=" + backups(), "--param", "max_error_rate=0.01"}, db.dsn);
  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  EXPECT_EQ(r.status(), "rolled_back");
  EXPECT_EQ(r.outcome.value("failed_step", ""), "verify/health");
  EXPECT_EQ(db.scalar("SELECT string_agg(step_name, ',' ORDER BY id) FROM migration_log WHERE status = 'ROLLBACK'"),
            "idx_conversation_timeline,bot responses,user queries,conversation owners,users");
  EXPECT_EQ(db.scalar("SELECT records_affected FROM migration_log WHERE status = 'ROLLBACK' AND step_name = 'users'"), "8");
  EXPECT_EQ(db.rows_of(k_seed000_tables), before);
  EXPECT_EQ(db.scalar("SELECT to_regclass('idx_conversation_timeline') IS NULL"), "t");
}

TEST_F(Seed, ReconcileReMigratesTheMissingQueriesAndResponses) {
  fixture_db db("migration/centralized_reconcile.sql");
  auto r = run(cli, "migration.centralized_reconcile", {}, db.dsn);
  ASSERT_EQ(r.proc.exit_code, 0) << r.describe();
  json found = r.note("missing data");
  EXPECT_EQ(found.value("Missing queries", -1), 3) << found.dump();
  EXPECT_EQ(found.value("Missing responses", -1), 2) << found.dump();
  EXPECT_EQ(r.step_end("missing queries")["result"].value("inserted", 0), 3);
  EXPECT_EQ(r.step_end("missing responses")["result"].value("inserted", 0), 2);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM user_queries"), "60");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM bot_responses"), "60");
  // and in a sandbox, from its fixture
  EXPECT_EQ(run(cli, "migration.centralized_reconcile").proc.exit_code, 0);
}

// check_database_health()'s error rate over the last hour (30 responses in the fixture): under
// 1% HEALTHY, under 5% WARNING, else UNHEALTHY; no responses at all is HEALTHY.
TEST_F(Seed, HealthFunctionTiersTheLastHoursErrorRate) {
  const std::string last_hour = "created_at >= now() - interval '1 hour'";
  struct tier { std::string sql, status, details; };
  std::vector<tier> tiers = {
      {"UPDATE bot_responses SET error_message = NULL", "HEALTHY", "Error rate: 0.00%"},
      {"UPDATE bot_responses SET error_message = NULL WHERE id <> 17", "WARNING", "Error rate: 3.33%"},
      {"", "UNHEALTHY", "Error rate: 6.67%"},
      {"DELETE FROM bot_responses WHERE " + last_hour, "HEALTHY", "Error rate: no responses in the last hour"},
  };
  for (const auto& t : tiers) {
    fixture_db db("monitor/centralized.sql", t.sql);
    auto r = run(cli, "monitor.centralized", {"--param", "watch_for=100ms", "--param", "every=100ms"}, db.dsn);
    ASSERT_EQ(r.proc.exit_code, 0) << r.describe();
    json rate = r.note("database health")["error_rate"];
    EXPECT_EQ(rate.value("status", ""), t.status) << t.sql << " " << rate.dump();
    EXPECT_EQ(rate.value("details", ""), t.details) << t.sql;
    EXPECT_EQ(r.note("database health")["conversations"].value("status", ""), "HEALTHY");
  }
}

TEST_F(Seed, ErrorRateWatchAlertsOnceAbove25Percent) {
  // 16 of the last hour's 30 responses failed.
  fixture_db db("monitor/centralized.sql",
                "UPDATE bot_responses SET error_message = 'model timeout' "
                "WHERE created_at >= now() - interval '1 hour' AND id % 4 = 1");
  const std::vector<std::string> fast = {"--param", "watch_for=600ms", "--param", "every=100ms"};
  // No channels configured: the alert is decided, shown and audited as not sent.
  auto quiet = run(cli, "monitor.centralized", fast, db.dsn);
  ASSERT_EQ(quiet.proc.exit_code, 0) << quiet.describe();
  EXPECT_EQ(decisions(quiet), std::vector<std::string>{"Level 1: above 25%"});
  EXPECT_TRUE(quiet.logged("not sent: no alert channels are configured")) << quiet.describe();

  auto file = alerts_to_file(false);
  auto r = run(cli, "monitor.centralized", fast, db.dsn);
  ASSERT_EQ(r.proc.exit_code, 0) << r.describe();
  EXPECT_EQ(decisions(r), std::vector<std::string>{"Level 1: above 25%"});  // once, not once a sample
  auto sent = lines(file);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_NE(sent[0].value("summary", "").find("HIGH_ERROR_RATE"), std::string::npos) << sent[0].dump();
  EXPECT_EQ(sent[0].value("severity", ""), "error");

  // 2 of 30 (the fixture as it is): no decision.
  fixture_db calm("monitor/centralized.sql");
  auto ok = run(cli, "monitor.centralized", fast, calm.dsn);
  ASSERT_EQ(ok.proc.exit_code, 0) << ok.describe();
  EXPECT_TRUE(decisions(ok).empty());
  EXPECT_EQ(lines(file).size(), 1u);
}

// ---- seed 002 ----------------------------------------------------------------------------

TEST_F(Seed, CriticalFixesBacksUpChecksTheServerAndMeetsTheSuccessCriteria) {
  auto r = run(cli, "migration.critical_fixes", {"--param", "backup_dir=" + backups(), "--param", "window=any"});
  ASSERT_EQ(r.proc.exit_code, 0) << r.describe();
  EXPECT_GE(r.step_end("PostgreSQL version")["result"].value("server_version_num", 0), 130000);
  json priv = r.step_end("privileges")["result"];
  EXPECT_TRUE(priv.value("create_in_public", false) && priv.value("plpgsql", false) && priv.value("owns_tables", false))
      << priv.dump();
  json b = r.step_end("backup before the fix")["result"];
  EXPECT_TRUE(std::filesystem::exists(b.value("file", ""))) << b.dump();
  EXPECT_EQ(r.step_end("monitoring views", "migrate").value("status", ""), "succeeded");
  EXPECT_FALSE(r.note("sync monitoring").is_null());
  for (const char* s : {"concurrent syncs are prevented", "sync resumption works",
                        "events are created atomically with conversations", "no duplicate events in database",
                        "webhook messages create events", "version numbers increment on updates",
                        "validation catches invalid Facebook data", "no race condition errors",
                        "no data inconsistencies between conversations and events"})
    EXPECT_EQ(r.step_end(s, "success criteria").value("status", ""), "succeeded") << s;
  json rate = r.step_end("sync completion rate improved", "success criteria");
  EXPECT_EQ(rate.value("status", ""), "skipped");
  EXPECT_NE(rate.value("reason", "").find("0 finished syncs of the 20 needed"), std::string::npos) << rate.dump();
}

// With 20 finished syncs of which 18 completed (90% < 95%), the criterion fails and the
// migration is undone; the sync tables that were there before are skipped, and stay.
TEST_F(Seed, CriticalFixesFailingACriterionUndoesTheMigration) {
  std::string tables = rb::testing::read_file(k_shipped + "/migration/critical_fixes/sync_tables.sql");
  fixture_db db("migration/critical_fixes.sql",
                tables + "\nINSERT INTO sync_state (page_id, status, completed_at) "
                         "SELECT 'page_1', CASE WHEN g <= 18 THEN 'completed' ELSE 'failed' END, now() "
                         "FROM generate_series(1, 20) g;");
  std::vector<std::string> data = {"messenger_conversations", "contact_interaction_events", "sync_state", "sync_locks"};
  std::string before = db.rows_of(data);
  auto r = run(cli, "migration.critical_fixes", {"--param", "backup_dir=" + backups(), "--param", "window=any"}, db.dsn);
  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  EXPECT_EQ(r.outcome.value("failed_step", ""), "success criteria/sync completion rate improved");
  EXPECT_NE(r.outcome["error"].value("message", "").find("90.0% is below 95.0%"), std::string::npos) << r.outcome.dump();
  EXPECT_EQ(r.step_end("sync tables", "migrate").value("status", ""), "skipped");
  EXPECT_EQ(db.rows_of(data), before);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'messenger_conversations' "
                      "AND column_name = 'version'"),
            "0");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM information_schema.views WHERE table_name IN ('active_syncs', 'sync_statistics')"),
            "0");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM pg_proc WHERE proname = 'acquire_sync_lock'"), "0");
  EXPECT_EQ(db.scalar("SELECT to_regclass('sync_state') IS NOT NULL"), "t");
}

TEST_F(Seed, PostDeployWatchEscalatesAMissingIndexAndAlertsOnStuckLocks) {
  fixture_db db("monitor/critical_fixes.sql",
                "DROP INDEX idx_unique_event_by_message; "
                "INSERT INTO sync_locks (page_id, locked_by, locked_at, expires_at) "
                "VALUES ('page_1', 'sync-crashed', now() - interval '1 hour', now() - interval '55 minutes');");
  auto file = alerts_to_file(true);
  auto r = run(cli, "monitor.critical_fixes", {"--param", "watch_for=600ms", "--param", "every=100ms"}, db.dsn);
  ASSERT_EQ(r.proc.exit_code, 0) << r.describe();
  EXPECT_EQ(decisions(r), (std::vector<std::string>{"unique indexes missing", "stuck locks"}));
  std::vector<json> opened;
  for (const auto& rec : cli.records())
    if (rec.value("event", "") == "incident.open") opened.push_back(rec);
  ASSERT_EQ(opened.size(), 1u) << r.describe();
  EXPECT_NE(opened[0].dump().find("\"level\":2"), std::string::npos) << opened[0].dump();
  EXPECT_NE(opened[0].dump().find("monitor.critical_fixes"), std::string::npos) << opened[0].dump();
  bool stuck = false, escalated = false;
  for (const auto& l : lines(file)) {
    stuck = stuck || l.value("summary", "").find("Sync lock not releasing") != std::string::npos;
    escalated = escalated || l.value("summary", "").find("unique event index") != std::string::npos;
  }
  EXPECT_TRUE(stuck && escalated) << rb::testing::read_file(file);
  // The fixture as it is: six quiet samples.
  fixture_db calm("monitor/critical_fixes.sql");
  auto ok = run(cli, "monitor.critical_fixes", {"--param", "watch_for=500ms", "--param", "every=100ms"}, calm.dsn);
  ASSERT_EQ(ok.proc.exit_code, 0) << ok.describe();
  EXPECT_TRUE(decisions(ok).empty());
}

// ---- watches whose every / lasting are params -------------------------------------------

TEST_F(Seed, WatchDurationsFromParamsAreCheckedAndUsed) {
  dir.write("runbooks/w/ok.lua", R"lua(runbook "w.ok" {
  params = { watch_for = { type = "duration", default = "1h" }, every = { type = "duration", default = "10m" } },
  watch "w" { every = function(ctx) return ctx.params.every end, lasting = function(ctx) return ctx.params.watch_for end,
              metrics = { x = function() return 1 end },
              trigger "t" { when = "x > 1", action = "abort" } },
})lua");
  auto r = cli.run({"run", "w.ok", "--json", "--param", "watch_for=300ms", "--param", "every=100ms"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  bool started = false;
  for (const auto& rec : cli.records())
    if (rec.value("event", "") == "watch.start") {
      started = true;
      EXPECT_EQ(rec.value("every_ms", 0), 100);
      EXPECT_EQ(rec.value("lasting_ms", 0), 300);
    }
  EXPECT_TRUE(started);
  // lasting shorter than every is refused when the watch starts, before any sample
  auto shorter = cli.run({"run", "w.ok", "--param", "watch_for=50ms", "--param", "every=100ms"});
  EXPECT_NE(shorter.exit_code, 0);
  EXPECT_NE((shorter.out + shorter.err).find("must be at least every"), std::string::npos) << shorter.out << shorter.err;
}

}  // namespace
