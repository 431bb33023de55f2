// Seed 004's emergency recovery as runbooks, run for real: a damage assessment of a damaged
// database (an unreadable table, an invalid index, orphans, lost rows) that opens an incident;
// a restore from a pg_dump that brings back every row; a point-in-time recovery from a real
// base backup and WAL archive that copies the lost users and submissions back; the guide's
// recovery SLAs as the escalation policy's timing (on a fake clock, to a real receiver); and
// the communication templates at the start and end of a recovery, filled, at a real receiver.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <thread>

#include "bindings/config.hpp"
#include "bindings/open_all.hpp"
#include "engine/alert/dispatcher.hpp"
#include "engine/audit/log.hpp"
#include "engine/db/connection.hpp"
#include "engine/incident/escalator.hpp"
#include "tests/incident/recording_notifier.hpp"
#include "tests/runbooks/shipped_support.hpp"
#include "tests/support/receiver.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace rb::testing::shipped;
using rb::testing::cli_sandbox;
using rb::testing::receiver;
using rb::testing::temp_dir;

const std::string k_config = k_shipped + "/troubleshoot/recovery.config";
const std::vector<std::string> k_channels = {"db_team", "tech_lead", "support", "cto"};
const std::vector<std::string> k_tables = {"users", "submissions", "points_ledger", "submission_attachments",
                                           "kajabi_events", "activities"};

/// The damage of damaged.sql, applied to a database (a lost file, an invalid index, lost points).
const std::string k_damage =
    "DELETE FROM points_ledger WHERE id NOT IN (SELECT id FROM points_ledger ORDER BY id LIMIT 5);"
    "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_submissions_activity_status'::regclass;"
    "UPDATE pg_class SET relfilenode = 4000000000 WHERE oid = 'kajabi_events'::regclass;";

/// Hands a directory to the server's system user when we are root (the server runs as postgres).
void give_to_server(const fs::path& p) {
  if (::geteuid() != 0) return;
  passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr || ::chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0)
    throw std::runtime_error("unable to hand " + p.string() + " to the postgres user");
}

class Seed004 : public ::testing::Test {
 protected:
  temp_dir dir{"rb-seed004"};
  cli_sandbox cli{dir.path()};
  std::unique_ptr<receiver> hook;

  void SetUp() override {
    // Servers run as postgres under root: they must be able to reach what the tests make here.
    fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                    fs::perms::others_read | fs::perms::others_exec);
  }
  void TearDown() override {
    if (fs::exists(cli.audit_log())) {
      EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
    }
  }

  /// runbook.lua: the shipped recovery.config with each channel a webhook to a real receiver
  /// (path /<channel>); the policy is the shipped one, unchanged.
  void channels_to_receiver() {
    hook = std::make_unique<receiver>(receiver::kind::http, dir.path());
    std::string cfg = rb::testing::read_file(k_config);
    for (const auto& c : k_channels) {
      std::string log_channel = c + " = { type = \"log\" }";
      auto at = cfg.find(log_channel);
      ASSERT_NE(at, std::string::npos) << c;
      cfg.replace(at, log_channel.size(), c + " = { type = \"webhook\", url = \"" + hook->url("/" + c) + "\" }");
    }
    dir.write("runbook.lua", cfg);
  }
  /// The summaries the receiver got on one channel, in order.
  std::vector<std::string> received(const std::string& channel) const {
    std::vector<std::string> out;
    for (const auto& r : hook->requests()) {
      if (r.value("path", "") != "/" + channel) continue;
      json body = json::parse(r.value("body", ""), nullptr, false);
      out.push_back(body["alerts"][0]["annotations"].value("summary", ""));
    }
    return out;
  }
  static bool has(const std::vector<std::string>& texts, const std::string& needle) {
    for (const auto& t : texts)
      if (t.find(needle) != std::string::npos) return true;
    return false;
  }
  std::string backups() const { return (dir.path() / "backups").string(); }
  /// The throwaway clusters runs leave in `tmp` (none, when they clean up).
  static int clusters_in(const fs::path& tmp) {
    int n = 0;
    for (const auto& e : fs::directory_iterator(tmp)) n += e.path().filename().string().rfind("runbook-pg-", 0) == 0;
    return n;
  }
  static void run_tool(const std::vector<std::string>& argv) {
    rb::shell::process_options o;
    o.argv = argv;
    o.timeout = 120s;
    auto r = rb::shell::run(o);
    ASSERT_TRUE(r.ok()) << argv[0] << ": " << r.err;
  }
};

// ---- damage assessment -------------------------------------------------------------------

TEST_F(Seed004, DamageAssessmentNamesEveryKindOfDamageAndOpensARecoveryIncident) {
  channels_to_receiver();
  auto r = run(cli, "troubleshoot.damage_assessment", {"--param", "min_points=20"});
  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  EXPECT_EQ(r.outcome.value("failed_step", ""), "verdict/damage scope") << r.describe();

  json unreadable = r.note("unreadable relations");
  ASSERT_EQ(unreadable.value("count", 0), 1) << unreadable.dump();
  EXPECT_EQ(unreadable["relations"][0].value("table", ""), "public.kajabi_events");
  EXPECT_NE(unreadable["relations"][0].value("error", "").find("could not open file"), std::string::npos)
      << unreadable.dump();
  json invalid = r.note("invalid indexes");
  ASSERT_EQ(invalid.value("count", 0), 1) << invalid.dump();
  EXPECT_EQ(invalid["indexes"][0].value("index", ""), "public.idx_submissions_activity_status");
  json orphans = r.note("orphaned records");
  EXPECT_EQ(orphans.value("submissions", -1), 3) << orphans.dump();
  EXPECT_EQ(orphans.value("attachments", -1), 2) << orphans.dump();
  EXPECT_EQ(r.note("row counts").value("points_ledger", -1), 5);
  // amcheck was created (confirmed with --yes) and checked every valid B-tree index but those
  // of the table whose file is gone.
  EXPECT_EQ(r.step_end("amcheck extension").value("status", ""), "succeeded");
  json amcheck = r.note("amcheck");
  EXPECT_GT(amcheck.value("checked", 0), 5) << amcheck.dump();
  ASSERT_EQ(amcheck["failed"].size(), 1u) << amcheck.dump();
  EXPECT_EQ(amcheck["failed"][0].value("index", ""), "public.kajabi_events_pkey");

  std::string message = r.outcome["error"].value("message", "");
  for (const char* finding : {"public.kajabi_events unreadable", "index public.idx_submissions_activity_status invalid",
                              "3 orphaned submissions", "points_ledger: 5 rows, at least 20 expected"})
    EXPECT_NE(message.find(finding), std::string::npos) << finding << " not in " << message;

  // Detection: the failed assessment opened an incident under the recovery policy, and the
  // database team was told at once, at the receiver.
  auto opened = cli.events("incident.open");
  ASSERT_EQ(opened.size(), 1u);
  EXPECT_EQ(opened[0]["policy"].value("name", ""), "recovery");
  ASSERT_TRUE(hook->wait_for(1));
  EXPECT_TRUE(has(received("db_team"), "damage found")) << hook->requests().size();
  EXPECT_TRUE(received("tech_lead").empty());
}

TEST_F(Seed004, DamageAssessmentOfAHealthyDatabaseSucceedsAndCreatesAmcheckOnlyWhenConfirmed) {
  fixture_db db("troubleshoot/recovered.sql");
  std::string before = db.rows_of(k_tables);
  dir.write("runbook.lua", rb::testing::read_file(k_config));
  // No --yes and no terminal: creating amcheck is declined, the assessment goes on without it.
  auto declined = cli.run({"run", "troubleshoot.damage_assessment", "--dsn", db.dsn}, {{"RUNBOOK_PATH", k_shipped}});
  EXPECT_EQ(declined.exit_code, 0) << declined.out << declined.err;
  EXPECT_EQ(cli.events("step.end", "amcheck extension").at(0).value("status", ""), "skipped");
  EXPECT_EQ(cli.events("step.end", "btree indexes (amcheck)").at(0).value("reason", ""), "amcheck is not installed");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'"), "0");
  auto r = run(cli, "troubleshoot.damage_assessment", {}, db.dsn);
  ASSERT_EQ(r.proc.exit_code, 0) << r.describe();
  EXPECT_EQ(r.step_end("amcheck extension").value("status", ""), "succeeded");
  EXPECT_EQ(r.note("unreadable relations").value("count", -1), 0);
  EXPECT_EQ(r.note("invalid indexes").value("count", -1), 0);
  EXPECT_EQ(r.note("amcheck")["failed"].size(), 0u);
  EXPECT_EQ(r.note("damage scope").value("damaged", true), false);
  EXPECT_EQ(db.rows_of(k_tables), before);
  EXPECT_TRUE(cli.events("incident.open").empty());
}

TEST_F(Seed004, DamageAssessmentFindsATableWhosePagesAreCorrupt) {
  // Real corruption: garbage over a table's first page on disk, in a server of our own.
  rb::db::cluster_options o;
  o.database = "app";
  rb::db::cluster pg(o);
  pg.run_sql_file(k_shipped + "/troubleshoot/recovered.sql", "app");
  std::string file;
  {
    rb::db::connection c({pg.dsn(), "test", "seed004"});
    file = c.exec("SELECT pg_relation_filepath('submission_attachments')").rows[0][0].text;
    c.exec("CHECKPOINT");
  }
  pg.restart();  // nothing of the table is left in shared buffers
  {
    std::fstream f(pg.data_dir() / file, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f) << file;
    std::string garbage(512, '\x5a');
    f.seekp(0);
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  dir.write("runbook.lua", rb::testing::read_file(k_config));
  auto r = run(cli, "troubleshoot.damage_assessment", {"--param", "amcheck=false"}, pg.dsn());
  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  json unreadable = r.note("unreadable relations");
  ASSERT_EQ(unreadable.value("count", 0), 1) << unreadable.dump();
  EXPECT_EQ(unreadable["relations"][0].value("table", ""), "public.submission_attachments");
  EXPECT_NE(unreadable["relations"][0].value("error", "").find("invalid page in block 0"), std::string::npos)
      << unreadable.dump();
  EXPECT_EQ(r.step_end("amcheck extension").value("status", ""), "skipped");
}

// ---- restore from backup -----------------------------------------------------------------

TEST_F(Seed004, RestoreFromBackupBringsBackEveryRowAndTellsTheTeamAtStartAndEnd) {
  fixture_db db("troubleshoot/recovered.sql");
  std::string good = db.rows_of(k_tables);
  std::string dump = (dir.path() / "good.dump").string();
  run_tool({rb::db::pg_bin("pg_dump").string(), "-Fc", "-f", dump, "--dbname=" + db.dsn});
  std::string points = db.scalar("SELECT count(*) FROM points_ledger");
  rb::testing::shared_cluster().run_sql(k_damage, db.name);
  ASSERT_EQ(db.scalar("SELECT count(*) FROM points_ledger"), "5");
  channels_to_receiver();

  auto r = run(cli, "troubleshoot.restore_from_backup",
               {"--param", "dump=" + dump, "--param", "backup_dir=" + backups(), "--param", "oncall=@dba-alice"}, db.dsn);
  ASSERT_EQ(r.proc.exit_code, 0) << r.describe();
  EXPECT_EQ(db.rows_of(k_tables), good);  // kajabi_events is readable again, the points are back
  EXPECT_EQ(db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_submissions_activity_status'::regclass"), "t");
  EXPECT_EQ(r.events("confirm").size(), 1u);

  // The damaged state was dumped first, without the rows nobody could read.
  json before = r.note("state before the restore");
  EXPECT_EQ(before["counts"].value("points_ledger", -1), 5) << before.dump();
  EXPECT_EQ(before["unreadable"][0].value("table", ""), "public.kajabi_events");
  json saved = r.step_end("current state")["result"];
  ASSERT_TRUE(fs::exists(saved.value("file", ""))) << saved.dump();
  EXPECT_EQ(saved.value("file", "").rfind(backups(), 0), 0u);
  EXPECT_EQ(saved["counts"].value("public.points_ledger", -1), 5) << saved.dump();
  EXPECT_FALSE(saved["counts"].contains("public.kajabi_events"));
  EXPECT_EQ(std::to_string(r.note("recovery counts").value("points_entries", 0)), points);
  EXPECT_EQ(r.note("orphaned records").value("submissions", -1), 0);
  // The checklist: the tables checked, the guide's steps outside the database left to a person.
  std::map<std::string, std::string> items;
  for (const auto& i : r.events("checklist.item")) items[i.value("step", "")] = i.value("outcome", "");
  EXPECT_EQ(items, (std::map<std::string, std::string>{{"every table can be read", "passed"},
                                                       {"health checks pass", "unconfirmed"},
                                                       {"applications restarted", "unconfirmed"}}));

  // Start and end at the receiver: the technical team's messages and the users' notice, filled.
  ASSERT_TRUE(hook->wait_for(5));  // started and completed to db_team and tech_lead, the notice to support
  for (const char* c : {"db_team", "tech_lead"}) {
    auto texts = received(c);
    ASSERT_EQ(texts.size(), 2u) << c;
    EXPECT_NE(texts[0].find("DATABASE RECOVERY STARTED: Restore the database from a backup"), std::string::npos) << texts[0];
    EXPECT_NE(texts[0].find("Recovery: restore from the backup " + dump), std::string::npos) << texts[0];
    EXPECT_NE(texts[1].find("DATABASE RECOVERY COMPLETED"), std::string::npos) << texts[1];
    EXPECT_NE(texts[1].find("- points_ledger: " + points + " rows (before the restore: 5)"), std::string::npos) << texts[1];
    EXPECT_NE(texts[1].find("On-call: @dba-alice"), std::string::npos) << texts[1];
    EXPECT_TRUE(std::regex_search(texts[1], std::regex("Data Loss: changes since the backup of \\d{4}-\\d\\d-\\d\\d")))
        << texts[1];
    for (const auto& t : texts) EXPECT_EQ(t.find("{{"), std::string::npos) << t;
  }
  auto notice = received("support");
  ASSERT_EQ(notice.size(), 1u);
  EXPECT_NE(notice[0].find("Subject: MS Elevate Platform - Service Update"), std::string::npos) << notice[0];
  EXPECT_NE(notice[0].find("Dear Elevate Participant"), std::string::npos) << notice[0];
  EXPECT_EQ(notice[0].find("{{"), std::string::npos) << notice[0];
  EXPECT_TRUE(received("cto").empty());
}

TEST_F(Seed004, ADeclinedRestoreKeepsTheDiagnosisAndTheDumpAndFailsOnTheUnreadableTable) {
  fixture_db db("troubleshoot/recovered.sql");
  std::string dump = (dir.path() / "good.dump").string();
  run_tool({rb::db::pg_bin("pg_dump").string(), "-Fc", "-f", dump, "--dbname=" + db.dsn});
  rb::testing::shared_cluster().run_sql(k_damage, db.name);
  dir.write("runbook.lua", rb::testing::read_file(k_config));
  auto p = cli.run({"run", "troubleshoot.restore_from_backup", "--json", "--dsn", db.dsn, "--param", "dump=" + dump,
                    "--param", "backup_dir=" + backups()},
                   {{"RUNBOOK_PATH", k_shipped}});  // no --yes, no terminal: the restore is declined
  EXPECT_EQ(p.exit_code, 1) << p.out << p.err;
  json declined, item;
  for (const auto& e : cli.events("step.end", "restore from the backup")) declined = e;
  EXPECT_EQ(declined.value("status", ""), "skipped") << declined.dump();
  EXPECT_TRUE(declined.value("declined", false));
  for (const auto& e : cli.events("checklist.item", "every table can be read")) item = e;
  EXPECT_EQ(item.value("outcome", ""), "failed") << item.dump();
  EXPECT_NE(item.value("detail", "").find("unreadable: public.kajabi_events"), std::string::npos) << item.dump();
  EXPECT_EQ(db.scalar("SELECT count(*) FROM points_ledger"), "5");  // nothing restored
  bool dumped = false;  // the diagnosis and the dump of the current state were kept
  for (const auto& e : fs::directory_iterator(backups())) dumped = dumped || e.path().filename().string().rfind("before_restore_", 0) == 0;
  EXPECT_TRUE(dumped);
  EXPECT_TRUE(cli.events("step.end", "recovery completed").empty());
}

TEST_F(Seed004, RestoreFromABackupThatDoesNotRestoreChangesNothingAndOpensAnIncident) {
  fixture_db db("troubleshoot/recovered.sql");
  std::string before = db.rows_of(k_tables);
  fs::path bad = dir.write("truncated.dump", "PGDMP not really a dump");
  dir.write("runbook.lua", rb::testing::read_file(k_config));
  auto r = run(cli, "troubleshoot.restore_from_backup",
               {"--param", "dump=" + bad.string(), "--param", "backup_dir=" + backups()}, db.dsn);
  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  EXPECT_EQ(r.outcome.value("failed_step", ""), "preflight/the backup restores") << r.describe();
  EXPECT_TRUE(r.step_end("restore from the backup").is_null());
  EXPECT_TRUE(r.events("confirm").empty());
  EXPECT_EQ(db.rows_of(k_tables), before);
  EXPECT_FALSE(fs::exists(backups()));
  auto opened = cli.events("incident.open");
  ASSERT_EQ(opened.size(), 1u);
  EXPECT_EQ(opened[0].value("runbook", ""), "troubleshoot.restore_from_backup");
}

// ---- point-in-time recovery --------------------------------------------------------------

/// A server of our own archiving its WAL, with the LEAPS tracker in database "app" and a base
/// backup taken.
struct archiving_server {
  fs::path archive, base;
  std::unique_ptr<rb::db::cluster> pg;

  explicit archiving_server(const fs::path& dir) : archive(dir / "archive"), base(dir / "base") {
    fs::create_directories(archive);
    give_to_server(archive);
    rb::db::cluster_options o;
    o.database = "app";
    o.settings = {{"archive_mode", "on"}, {"archive_command", "cp %p " + archive.string() + "/%f"}, {"wal_level", "replica"}};
    pg = std::make_unique<rb::db::cluster>(o);
    pg->run_sql_file(k_shipped + "/troubleshoot/recovered.sql", "app");
    rb::shell::process_options b;
    b.argv = {rb::db::pg_bin("pg_basebackup").string(), "-D", base.string(), "-Fp", "-X", "stream", "--checkpoint=fast",
              "--dbname=" + pg->dsn()};
    b.timeout = 120s;
    auto r = rb::shell::run(b);
    if (!r.ok()) throw std::runtime_error("pg_basebackup: " + r.err);
  }
  /// Statements (several, in one psql -c) against "app".
  void run(const std::string& statements) const { pg->run_sql(statements, "app"); }
  /// One query's first value.
  std::string sql(const std::string& statement) const {
    rb::db::connection c({pg->dsn(), "test", "seed004"});
    auto r = c.exec(statement);
    return r.rows.empty() || r.rows[0].empty() || r.rows[0][0].null ? "" : r.rows[0][0].text;
  }
  /// Switches to a new WAL segment and waits until the archiver has copied the one it ended.
  void archive_now() const {
    std::string segment = sql("SELECT pg_walfile_name(pg_switch_wal())");
    for (int i = 0; i < 600; ++i) {
      if (sql("SELECT coalesce(last_archived_wal >= '" + segment + "', false) FROM pg_stat_archiver") == "t") return;
      std::this_thread::sleep_for(50ms);
    }
    throw std::runtime_error("WAL segment " + segment + " was not archived in 30 s");
  }
};

TEST_F(Seed004, PointInTimeRecoveryCopiesTheLostUsersAndSubmissionsBack) {
  archiving_server live(dir.path());
  // After the base backup: a new participant with a submission and points, then the target time.
  live.run("INSERT INTO users (id, handle, name, email) VALUES ('user_90', 'handle90', 'Participant 90', 'p90@school.test');"
           "INSERT INTO submissions (id, user_id, activity_code, status, review_note) VALUES "
           "  ('sub_LEARN_user_90', 'user_90', 'LEARN', 'APPROVED', NULL);"
           "INSERT INTO points_ledger (id, user_id, activity_code, source, delta_points) VALUES "
           "  ('pts_user_90', 'user_90', 'LEARN', 'FORM', 20)");
  std::string expected = live.sql("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM "
                                  "(SELECT u::text AS t FROM users u UNION ALL SELECT s::text FROM submissions s "
                                  " UNION ALL SELECT p::text FROM points_ledger p) x");
  std::string target = live.sql("SELECT clock_timestamp()::text");
  // Then the accident: the new participant and two others' submissions deleted, a later user kept.
  live.run("DELETE FROM points_ledger WHERE user_id = 'user_90'; DELETE FROM submissions WHERE user_id IN "
           "('user_90', 'user_05'); DELETE FROM users WHERE id = 'user_90'");
  live.run("INSERT INTO users (id, handle, name, email) VALUES ('user_91', 'handle91', 'Participant 91', 'p91@school.test')");
  live.archive_now();

  fs::path tmp = dir.path() / "tmp";
  fs::create_directories(tmp);
  fs::permissions(tmp, fs::perms::all | fs::perms::sticky_bit);
  std::vector<std::string> argv{"run", "troubleshoot.point_in_time_recovery", "--json", "--dsn", live.pg->dsn("app"),
                                "--param", "base_backup=" + live.base.string(), "--param", "wal_archive=" + live.archive.string(),
                                "--param", "target_time=" + target, "--param", "backup_dir=" + backups()};

  // Declined (no --yes, no terminal): the loss is found and reported, nothing is copied back,
  // and the verification fails on the attachments the lost submissions left orphaned.
  dir.write("runbook.lua", rb::testing::read_file(k_config));
  auto declined = cli.run(argv, {{"RUNBOOK_PATH", k_shipped}, {"TMPDIR", tmp.string()}});
  EXPECT_EQ(declined.exit_code, 1) << declined.out << declined.err;
  EXPECT_EQ(cli.events("step.end", "copy lost rows back").at(0).value("status", ""), "skipped");
  EXPECT_TRUE(cli.events("step.end", "copy lost rows back").at(0).value("declined", false));
  EXPECT_EQ(cli.events("step.end", "recovery verification").at(0).value("status", ""), "failed");
  EXPECT_EQ(live.sql("SELECT count(*) FROM users WHERE id = 'user_90'"), "0");
  EXPECT_EQ(clusters_in(tmp), 0);

  channels_to_receiver();
  argv.insert(argv.begin() + 2, "--yes");
  run_result r;
  r.proc = cli.run(argv, {{"RUNBOOK_PATH", k_shipped}, {"TMPDIR", tmp.string()}});
  r.outcome = json::parse(r.proc.out, nullptr, false);
  for (auto& rec : cli.records())
    if (rec.value("run", "") == r.outcome.value("run", "")) r.records.push_back(rec);
  ASSERT_EQ(r.proc.exit_code, 0) << r.describe();

  EXPECT_EQ(r.note("lost users")["ids"], json::array({"user_90"}));
  EXPECT_EQ(r.note("lost submissions")["ids"], json::array({"sub_EXPLORE_user_05", "sub_LEARN_user_05", "sub_LEARN_user_90"}));
  EXPECT_EQ(r.note("lost points_ledger")["ids"], json::array({"pts_user_90"}));
  EXPECT_EQ(r.note("rows recovered"), json({{"users", 1}, {"submissions", 3}, {"points_ledger", 1}}));
  EXPECT_FALSE(r.note("recovery database ready").value("replayed_to", "").empty());
  // The live database has its rows back exactly as they were, and kept what came after.
  EXPECT_EQ(live.sql("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM "
                     "(SELECT u::text AS t FROM users u WHERE id <> 'user_91' UNION ALL SELECT s::text FROM submissions s "
                     " UNION ALL SELECT p::text FROM points_ledger p) x"),
            expected);
  EXPECT_EQ(live.sql("SELECT count(*) FROM users WHERE id = 'user_91'"), "1");
  // Backed up first; the recovery database is gone.
  json saved = r.step_end("backup before applying")["result"];
  EXPECT_TRUE(fs::exists(saved.value("file", ""))) << saved.dump();
  EXPECT_EQ(clusters_in(tmp), 0);
  // started and completed to db_team and tech_lead, the notice to support, and the declined
  // run's incident resolved (db_team) by this run
  ASSERT_TRUE(hook->wait_for(6));
  EXPECT_TRUE(has(received("db_team"), "Recovery: point-in-time recovery to " + target));
  EXPECT_TRUE(has(received("db_team"), "- users: 1 rows recovered from the copy at " + target));
  EXPECT_TRUE(has(received("tech_lead"), "- submissions: 3 rows recovered from the copy at " + target));
  ASSERT_EQ(received("support").size(), 1u);
  EXPECT_NE(received("support")[0].find("Resubmit any evidence submitted after " + target), std::string::npos)
      << received("support")[0];
  for (const auto& c : {"db_team", "tech_lead", "support"})
    for (const auto& t : received(c)) EXPECT_EQ(t.find("{{"), std::string::npos) << t;
}

TEST_F(Seed004, PointInTimeRecoveryThatCannotReachItsTargetFailsAndLeavesNoServerBehind) {
  archiving_server live(dir.path());
  std::string beyond_the_archive = "2100-01-01 00:00:00+00";
  fs::path tmp = dir.path() / "tmp";
  fs::create_directories(tmp);
  fs::permissions(tmp, fs::perms::all | fs::perms::sticky_bit);
  dir.write("runbook.lua", rb::testing::read_file(k_config));
  auto p = cli.run({"run", "troubleshoot.point_in_time_recovery", "--yes", "--json", "--dsn", live.pg->dsn("app"),
                    "--param", "base_backup=" + live.base.string(), "--param", "wal_archive=" + live.archive.string(),
                    "--param", "target_time=" + beyond_the_archive, "--param", "backup_dir=" + backups()},
                   {{"RUNBOOK_PATH", k_shipped}, {"TMPDIR", tmp.string()}});
  EXPECT_EQ(p.exit_code, 1) << p.out << p.err;
  json outcome = json::parse(p.out, nullptr, false);
  EXPECT_EQ(outcome.value("failed_step", ""), "recovery database/start the recovery database") << p.out;
  // the server's reason, from its log
  EXPECT_NE(outcome["error"].value("message", "").find("recovery ended before configured recovery target was reached"),
            std::string::npos)
      << p.out;
  EXPECT_EQ(clusters_in(tmp), 0);
  EXPECT_EQ(cli.events("incident.open").size(), 1u);
}

TEST_F(Seed004, PointInTimeRecoveryStoppedByCtrlCLeavesNoServerBehind) {
  archiving_server live(dir.path());
  // An archive whose files never arrive: restore_command blocks reading FIFOs, the replay waits.
  fs::path stuck = dir.path() / "stuck";
  fs::create_directories(stuck);
  give_to_server(stuck);
  std::string label = rb::testing::read_file(live.base / "backup_label");
  std::smatch first;
  ASSERT_TRUE(std::regex_search(label, first, std::regex("\\(file ([0-9A-F]{24})\\)"))) << label;
  std::vector<fs::path> fifos = {stuck / "00000002.history", stuck / first[1].str()};
  for (const auto& f : fifos) {
    ASSERT_EQ(::mkfifo(f.c_str(), 0666), 0) << f;
    give_to_server(f);
  }
  fs::path tmp = dir.path() / "tmp";
  fs::create_directories(tmp);
  fs::permissions(tmp, fs::perms::all | fs::perms::sticky_bit);
  dir.write("runbook.lua", rb::testing::read_file(k_config));
  pid_t pid = cli.spawn({"run", "troubleshoot.point_in_time_recovery", "--yes", "--dsn", live.pg->dsn(), "--param",
                         "base_backup=" + live.base.string(), "--param", "wal_archive=" + stuck.string(), "--param",
                         "target_time=2100-01-01 00:00:00+00", "--param", "backup_dir=" + backups()},
                        {{"RUNBOOK_PATH", k_shipped}, {"TMPDIR", tmp.string()}});
  ASSERT_TRUE(cli.wait_for("step.start", "start the recovery database"));
  bool replaying = false;  // the recovery server is up, waiting on its archive
  for (int i = 0; i < 600 && !replaying; ++i) {
    for (const auto& e : fs::directory_iterator(tmp)) replaying = replaying || fs::exists(e.path() / "data" / "postmaster.pid");
    if (!replaying) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(replaying);
  ::kill(pid, SIGINT);
  EXPECT_EQ(rb::testing::wait_exit(pid, std::chrono::seconds(30)), 130);
  EXPECT_EQ(clusters_in(tmp), 0);
  auto ended = cli.events("step.end", "start the recovery database");
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].value("status", ""), "failed") << ended[0].dump();
  for (const auto& f : fifos) {  // let a restore_command still blocked on a FIFO go
    int fd = ::open(f.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
}

// ---- recovery SLAs -----------------------------------------------------------------------

// The shipped policy, read from recovery.config, climbing on a fake clock; each level's
// notifications delivered over HTTP to a real receiver.
TEST_F(Seed004, RecoveryPolicyClimbsOnTheGuidesSlasToRealReceivers) {
  auto sb = rb::lua::make_sandbox({});
  rb::run::config cfg = rb::lua::load_config(*sb, fs::path(k_config));
  const rb::incident::policy* p = cfg.escalation.find("recovery");
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(p->levels.size(), 4u);
  EXPECT_EQ(p->levels[1].after, 30min);  // initial response
  EXPECT_EQ(p->levels[2].after, 1h);     // communication
  EXPECT_EQ(p->levels[3].after, 4h);     // resolution

  receiver http(receiver::kind::http, dir.path());
  std::map<std::string, rb::alert::channel_config> channels;
  for (const auto& [name, c] : cfg.channels) {
    rb::alert::channel_config w = c;
    w.type = rb::alert::channel_type::webhook;
    w.url = http.url("/" + name);
    channels[name] = w;
  }
  ASSERT_EQ(channels.size(), 4u);
  rb::testing::fake_clock clk;
  rb::audit::log journal(dir.path() / "audit.jsonl"), deliveries(dir.path() / "audit.jsonl");
  rb::alert::dispatcher notifier(channels, deliveries, clk);
  rb::incident::store incidents(journal);
  rb::incident::escalator esc(incidents, &notifier, clk);

  rb::incident::open_request req;
  req.runbook = "troubleshoot.restore_from_backup";
  req.target = "primary";
  req.cause = "run failed";
  req.severity = "critical";
  req.summary = "runbook troubleshoot.restore_from_backup failed on primary";
  req.escalation = p;
  auto opened = esc.open_or_join(req);
  ASSERT_TRUE(opened.what.changed);

  auto paths = [&] {
    std::vector<std::string> out;
    for (const auto& r : http.requests()) out.push_back(r.value("path", "") + "@" +
        std::to_string(json::parse(r.value("body", ""))["runbook"].value("level", 0)));
    std::sort(out.begin(), out.end());
    return out;
  };
  ASSERT_TRUE(http.wait_for(1));
  EXPECT_EQ(paths(), std::vector<std::string>({"/db_team@1"}));

  struct step { std::chrono::milliseconds at; std::vector<std::string> told; };
  std::vector<step> climb = {
      {30min, {"/db_team@1", "/db_team@2", "/tech_lead@2"}},
      {1h, {"/db_team@1", "/db_team@2", "/support@3", "/tech_lead@2", "/tech_lead@3"}},
      {4h, {"/cto@4", "/db_team@1", "/db_team@2", "/support@3", "/tech_lead@2", "/tech_lead@3", "/tech_lead@4"}},
  };
  std::chrono::milliseconds now{0};
  for (const auto& s : climb) {
    clk.advance(s.at - now - 1s);
    EXPECT_TRUE(esc.advance().empty()) << "a second before " << s.at.count() << " ms";
    clk.advance(1s);
    now = s.at;
    ASSERT_EQ(esc.advance().size(), 1u) << s.at.count();
    ASSERT_TRUE(http.wait_for(s.told.size()));
    EXPECT_EQ(paths(), s.told);
  }
  clk.advance(8h);
  EXPECT_TRUE(esc.advance().empty());  // nothing beyond the CTO
  EXPECT_TRUE(notifier.drain(10s).empty());
  EXPECT_EQ(incidents.find(opened.what.inc.id)->level, 4);
}

}  // namespace
