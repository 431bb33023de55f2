// Every migration runbook, made to fail for real, without editing it: a failing step (a trigger
// or an event trigger the test puts in the database raises), a failing verification (a trigger
// quietly changes what the step wrote, so its check finds it wrong) and a killed connection
// (the test holds a lock the run needs, waits until the run's session waits on it in
// pg_stat_activity, and pg_terminate_backend()s it). Each run must end with the right exit code,
// its decision audited (the failed step, the rollback path with every handler, run.end), the
// incident's alert delivered to a real webhook receiver, and the database as the test found it:
// the stdlib's fingerprint (schema, privileges, every table's rows and sequences) taken before
// and after, equal but for what the runbook keeps on purpose (its log tables, its snapshots) and
// sequences that only advanced (they never roll back in PostgreSQL; `rehearse` notes them too).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <ostream>
#include <set>
#include <thread>

#include "engine/db/cluster.hpp"
#include "engine/db/connection.hpp"
#include "engine/shell/process.hpp"
#include "tests/runbooks/shipped_support.hpp"
#include "tests/support/receiver.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using rb::testing::cli_sandbox;
using rb::testing::receiver;
using rb::testing::temp_dir;
using rb::testing::shipped::k_shipped;

enum class fault { failing_step, failing_verify, killed_connection };

/// One injected fault in one migration runbook.
struct fault_case {
  std::string id;       ///< the test's name
  std::string runbook;
  std::string fixture;  ///< under runbooks/
  fault kind;
  std::string inject;  ///< SQL run before the "before" fingerprint: triggers, event triggers, objects
  std::string hold;    ///< killed_connection: SQL the test runs in an open transaction to hold a lock
  std::string failed_step;  ///< "phase/step" the run must name as failed
  std::string error;        ///< text the run's error must hold
  std::vector<std::string> kept = {};    ///< tables the runbook keeps on purpose (in any difference's path)
  std::vector<std::string> params = {};  ///< --param k=v
  bool private_server = false;  ///< the runbook creates roles, or refuses while other tests' sessions wait on locks
  bool needs_dump = false;      ///< --param dump=<a pg_dump -Fc of the fixture>
  bool needs_backup_dir = false;
  std::string status = "rolled_back";
  std::vector<std::string> undone = {};  ///< the rollback handlers that must run, in order
};

// gtest prints a parameter by its name, not its bytes.
void PrintTo(const fault_case& c, std::ostream* os) { *os << c.id; }

std::string show(fault k) {
  switch (k) {
    case fault::failing_step: return "failing step";
    case fault::failing_verify: return "failing verify";
    case fault::killed_connection: return "killed connection";
  }
  return "?";
}

// ---- the fingerprint -------------------------------------------------------------------

/// A runbook of the test's own that returns stdlib fingerprint.take() of its target as its
/// step's result, flattened to "schemas/public/tables/users/hash" = value (a step's result is
/// audited four tables deep; deeper ones would read "<table>").
constexpr const char* k_fingerprint_runbook = R"lua(
local fingerprint = require "fingerprint"
local function flatten(t, prefix, out)
  for k, v in pairs(t) do
    local path = prefix == "" and tostring(k) or (prefix .. "/" .. tostring(k))
    if type(v) == "table" then flatten(v, path, out) else out[path] = v end
  end
  return out
end
runbook "faults.fingerprint" {
  step "take" { run = function(ctx) return flatten(fingerprint.take(ctx.db), "", {}) end },
}
)lua";

/// "unused" (a sequence never drawn from) is below every number.
long long sequence_position(const json& v) {
  if (v.is_number()) return v.get<long long>();
  if (v.is_string() && v.get<std::string>() != "unused") return std::stoll(v.get<std::string>());
  return -1;
}

/// The paths where `b` differs from `a`, but those under a kept table's name and sequences that
/// only moved forward.
void differences(const json& a, const json& b, const std::string& path, const std::vector<std::string>& kept,
                 std::vector<std::string>& out) {
  for (const auto& k : kept)
    if (path.find(k) != std::string::npos) return;
  if (path == "/digest") return;  // a hash over everything: the rest says what differs
  if (path.size() > 11 && path.rfind("/last_value") == path.size() - 11 && path.find("/sequences/") != std::string::npos) {
    if (sequence_position(b) >= sequence_position(a)) return;
  }
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it.key());
    for (auto it = b.begin(); it != b.end(); ++it) keys.insert(it.key());
    for (const auto& k : keys)
      differences(a.contains(k) ? a[k] : json(), b.contains(k) ? b[k] : json(), path + "/" + k, kept, out);
    return;
  }
  if (a != b) out.push_back(path + ": " + a.dump().substr(0, 200) + " -> " + b.dump().substr(0, 200));
}

// ---- the test ------------------------------------------------------------------------

class Faults : public ::testing::TestWithParam<fault_case> {
 protected:
  temp_dir dir{"rb-faults"};
  cli_sandbox cli{dir.path()};
  receiver hook{receiver::kind::http, dir.path()};
  std::filesystem::path config;

  std::map<std::string, std::string> env() const {
    return {{"RUNBOOK_PATH", k_shipped + ":" + (dir.path() / "extra").string()}};
  }

  void SetUp() override {
    dir.write("extra/faults/fingerprint.lua", k_fingerprint_runbook);
    // The failure alert goes to the receiver: a run that ends rolled back or failed opens an
    // incident under the default policy (import_fix: the policy its runbook names), whose
    // first level notifies the webhook at once. The runbooks' own messages go to a log channel.
    config = dir.write("faults.lua",
                       "return {\n"
                       "  channels = { hook = { type = 'webhook', url = '" + hook.url("/hook") + "' },\n"
                       "               team = { type = 'log' } },\n"
                       "  default_channels = { 'team' },\n"
                       "  escalation = {\n"
                       "    faults = { levels = { { after = '0m', notify = { 'hook' } } } },\n"
                       "    import_fix = { levels = { { after = '0m', notify = { 'hook' } } } },\n"
                       "  },\n"
                       "  default_escalation = 'faults',\n"
                       "}\n");
  }

  void TearDown() override {
    if (std::filesystem::exists(cli.audit_log())) {
      EXPECT_EQ(cli.run({"audit", "verify"}, env()).exit_code, 0);
    }
  }

  json fingerprint(const std::string& dsn) {
    auto r = cli.run({"run", "faults.fingerprint", "--dsn", dsn, "--json"}, env());
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    json o = json::parse(r.out, nullptr, false);
    std::string id = o.is_object() ? o.value("run", "") : "";
    for (const auto& rec : cli.records())
      if (rec.value("run", "") == id && rec.value("event", "") == "step.end") return rec.value("result", json());
    return json();
  }

  std::vector<std::string> run_args(const fault_case& c, const std::string& dsn) {
    std::vector<std::string> a{"run", c.runbook, "--yes", "--dsn", dsn, "--config", config.string()};
    for (const auto& p : c.params) a.insert(a.end(), {"--param", p});
    if (c.needs_backup_dir) a.insert(a.end(), {"--param", "backup_dir=" + (dir.path() / "backups").string()});
    if (c.needs_dump) a.insert(a.end(), {"--param", "dump=" + (dir.path() / "before.dump").string()});
    return a;
  }

  /// The records of the latest run of `runbook`.
  std::vector<json> run_records(const std::string& runbook) {
    auto all = cli.records();
    std::string id;
    for (const auto& r : all)
      if (r.value("event", "") == "run.start" && r.value("runbook", "") == runbook) id = r.value("run", "");
    std::vector<json> out;
    for (const auto& r : all)
      if (!id.empty() && r.value("run", "") == id) out.push_back(r);
    return out;
  }
};

/// The run's session of this database (the engine's connections are application "runbook")
/// waiting on a lock; 0 when none.
int waiting_backend(rb::db::connection& admin) {
  auto r = admin.exec("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                      "AND application_name = 'runbook' AND wait_event_type = 'Lock' ORDER BY backend_start LIMIT 1");
  return r.rows.empty() ? 0 : std::stoi(r.rows[0][0].text);
}

TEST_P(Faults, RestoresTheDatabaseAuditsTheDecisionAndAlerts) {
  const fault_case& c = GetParam();
  rb::db::cluster& server = c.private_server ? rb::testing::private_cluster() : rb::testing::shared_cluster();
  rb::testing::shipped::fixture_db db(c.fixture, "", server);
  if (c.needs_dump) {
    rb::shell::process_options o;
    o.argv = {rb::db::pg_bin("pg_dump").string(), "-Fc", "-f", (dir.path() / "before.dump").string(), "-d", db.dsn};
    auto d = rb::shell::run(o);
    ASSERT_EQ(d.exit_code, 0) << d.err;
  }
  if (!c.inject.empty()) server.run_sql(c.inject, db.name);
  json before = fingerprint(db.dsn);
  ASSERT_TRUE(before.is_object() && before.contains("digest")) << before.dump().substr(0, 500);

  int exit_code = -3;
  std::vector<json> recs;
  std::string output;
  if (c.kind != fault::killed_connection) {
    auto r = cli.run(run_args(c, db.dsn), env());
    exit_code = r.exit_code;
    recs = run_records(c.runbook);
    output = r.out + "\n" + r.err;
  } else {
    // The test's session holds a lock the run will need; once the run's session waits on it,
    // that session is terminated, then the lock released.
    rb::db::connection holder({db.dsn, "holder", "faults_holder"});
    holder.exec("BEGIN");
    holder.exec(c.hold);
    pid_t pid = cli.spawn(run_args(c, db.dsn), env());
    rb::db::connection admin({db.dsn, "admin", "faults_admin"});
    int victim = 0;
    for (auto t0 = std::chrono::steady_clock::now(); victim == 0 && std::chrono::steady_clock::now() - t0 < 120s;) {
      victim = waiting_backend(admin);
      if (victim == 0) {
        int st = 0;
        if (::waitpid(pid, &st, WNOHANG) == pid) {
          ADD_FAILURE() << "the run ended before it waited on the lock";
          pid = -1;
          break;
        }
        std::this_thread::sleep_for(20ms);  // polling pg_stat_activity, the observable state
      }
    }
    ASSERT_NE(victim, 0) << "no session of the run waited on the held lock";
    auto waiting_on = admin.exec("SELECT query FROM pg_stat_activity WHERE pid = " + std::to_string(victim));
    EXPECT_EQ(admin.exec("SELECT pg_terminate_backend(" + std::to_string(victim) + ")").rows[0][0].text, "t");
    holder.exec("ROLLBACK");
    if (pid > 0) exit_code = rb::testing::wait_exit(pid, 300s);
    recs = run_records(c.runbook);
    output = "terminated the session running: " + (waiting_on.rows.empty() ? "" : waiting_on.rows[0][0].text);
  }

  auto events = [&](const std::string& e) {
    std::vector<json> out;
    for (const auto& r : recs)
      if (r.value("event", "") == e) out.push_back(r);
    return out;
  };
  std::string trail;
  for (const auto& r : recs) trail += r.dump().substr(0, 400) + "\n";
  SCOPED_TRACE(c.runbook + ", " + show(c.kind) + ":\n" + output + "\n" + trail);

  // The exit code and the run's end.
  EXPECT_EQ(exit_code, c.status == "rollback_failed" ? 3 : 1);
  auto end = events("run.end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0].value("status", ""), c.status);
  EXPECT_EQ(end[0].value("failed_step", ""), c.failed_step);
  EXPECT_NE(end[0].dump().find(c.error), std::string::npos) << end[0].dump();
  if (c.kind == fault::killed_connection) {
    // "terminating connection due to administrator command": the run saw its session go
    EXPECT_EQ(end[0]["error"].value("class", ""), "connection") << end[0].dump();
    EXPECT_EQ(end[0]["error"].value("sqlstate", ""), "57P01") << end[0].dump();
  }

  // The decision: the failed step, and the rollback path with each handler that had to run.
  std::string phase = c.failed_step.substr(0, c.failed_step.find('/'));
  std::string step = c.failed_step.substr(c.failed_step.find('/') + 1);
  bool step_failed = false;
  for (const auto& e : events("step.end"))
    if (e.value("step", "") == step && e.value("phase", "") == phase && e.value("status", "") == "failed") step_failed = true;
  EXPECT_TRUE(step_failed);
  auto decided = events("run.rollback");
  ASSERT_EQ(decided.size(), 1u) << "the rollback decision is audited";
  EXPECT_NE(decided[0].value("reason", "").find(c.failed_step + " failed"), std::string::npos) << decided[0].dump();
  std::vector<std::string> undone;
  for (const auto& e : events("rollback.end")) {
    EXPECT_EQ(e.value("status", ""), "succeeded") << e.dump();
    undone.push_back(e.value("step", ""));
  }
  EXPECT_EQ(undone, c.undone);
  if (!c.undone.empty()) {
    EXPECT_FALSE(events("rollback.start").empty());
  }

  // The failure alert reached the receiver: the incident's trigger, naming the runbook.
  ASSERT_TRUE(hook.wait_for(1)) << "no alert reached the receiver";
  bool alerted = false;
  for (const auto& req : hook.requests()) {
    json b = json::parse(req.value("body", ""), nullptr, false);
    if (b.is_object() && b.value("status", "") == "firing" && !b["alerts"].empty() &&
        b["alerts"][0]["labels"].value("runbook", "") == c.runbook)
      alerted = true;
  }
  EXPECT_TRUE(alerted) << hook.requests().front().dump();
  bool opened = false;
  for (const auto& r : cli.records())
    if (r.value("event", "") == "incident.open" && r.value("runbook", "") == c.runbook) opened = true;
  EXPECT_TRUE(opened);

  // The database is as the test found it.
  json after = fingerprint(db.dsn);
  std::vector<std::string> diff;
  differences(before, after, "", c.kept, diff);
  std::string words;
  for (const auto& d : diff) words += d + "\n";
  EXPECT_TRUE(diff.empty()) << words;
}

// The comparison itself: a changed row, a new index and a sequence moved back are differences;
// a sequence that only advanced and a kept table's rows are not.
TEST_F(Faults, FingerprintComparisonSeesWhatAFailedRollbackWouldLeave) {
  rb::testing::shipped::fixture_db db("migration/rollback_users.sql");
  json before = fingerprint(db.dsn);
  db.scalar("SELECT nextval('users_id_seq')");
  db.scalar("CREATE TABLE kept_log (id int)");
  db.scalar("INSERT INTO kept_log VALUES (1)");
  std::vector<std::string> diff;
  differences(before, fingerprint(db.dsn), "", {"kept_log"}, diff);
  EXPECT_TRUE(diff.empty()) << diff.front();

  db.scalar("UPDATE users SET display_name = 'changed' WHERE id = (SELECT min(id) FROM users)");
  db.scalar("CREATE INDEX extra ON users (display_name)");
  db.scalar("SELECT setval('users_id_seq', 1)");
  diff.clear();
  differences(before, fingerprint(db.dsn), "", {"kept_log"}, diff);
  std::string words;
  for (const auto& d : diff) words += d + "\n";
  EXPECT_NE(words.find("/tables/users/hash"), std::string::npos) << words;
  EXPECT_NE(words.find("/indexes/extra"), std::string::npos) << words;
  EXPECT_NE(words.find("/sequences/users_id_seq/last_value"), std::string::npos) << words;
}

// ---- the faults ------------------------------------------------------------------------

/// A trigger function named `fn` with this body (plpgsql), for BEFORE row triggers.
std::string trigger_fn(const std::string& fn, const std::string& body) {
  return "CREATE FUNCTION " + fn + "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " + body + " END $$;\n";
}
/// An event trigger that raises at the start of DDL with this tag whose text holds `needle`.
std::string failing_ddl(const std::string& tag, const std::string& needle) {
  return "CREATE FUNCTION refuse_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN "
         "IF current_query() LIKE '%" + needle + "%' THEN RAISE EXCEPTION 'injected fault: % refused', tg_tag; END IF; "
         "END $$;\n"
         "CREATE EVENT TRIGGER refuse_ddl ON ddl_command_start WHEN TAG IN ('" + tag + "') EXECUTE FUNCTION refuse_ddl();\n";
}


std::vector<fault_case> cases() {
  std::vector<fault_case> v;

  // migration.centralized: one transaction with a savepoint per step, then an index built
  // concurrently. Its migration_log keeps the START / ERROR / ROLLBACK rows on purpose.
  v.push_back({"CentralizedFailingStep", "migration.centralized", "migration/centralized.sql", fault::failing_step,
               trigger_fn("refuse", "RAISE EXCEPTION 'injected fault: no bot responses'; ") +
                   "CREATE TRIGGER refuse BEFORE INSERT ON bot_responses FOR EACH ROW EXECUTE FUNCTION refuse();",
               "", "migrate/bot responses", "injected fault: no bot responses", {"migration_log"}, {}, false, false, true,
               "rolled_back", {}});
  v.push_back({"CentralizedFailingVerify", "migration.centralized", "migration/centralized.sql", fault::failing_verify,
               // one conversation quietly loses the owner the migration gives it
               trigger_fn("lose_owner", "IF NEW.id = (SELECT min(id) FROM conversations) THEN NEW.user_id := NULL; END IF; "
                                        "RETURN NEW; ") +
                   "CREATE TRIGGER lose_owner BEFORE UPDATE ON conversations FOR EACH ROW EXECUTE FUNCTION lose_owner();",
               "", "migrate/conversation owners", "conversations without valid users", {"migration_log"}, {}, false,
               false, true, "rolled_back", {}});
  v.push_back({"CentralizedKilledConnection", "migration.centralized", "migration/centralized.sql",
               fault::killed_connection, "", "LOCK TABLE bot_responses IN SHARE MODE", "migrate/bot responses",
               "57P01", {"migration_log"}, {}, false, false, true, "rolled_back", {}});

  // migration.centralized_restore: the tables replaced from a backup; its snapshot tables
  // rollback_backup_* are kept on purpose ("for analysis"). A failed restore step puts the rows
  // back from the snapshot itself (it never completed, so there is nothing to compensate: the
  // run ends `failed`); a restore that completed but fails its verification is compensated by
  // the same put-back, and the run ends `rolled_back`.
  v.push_back({"CentralizedRestoreFailingStep", "migration.centralized_restore", "migration/rollback_users.sql",
               fault::failing_step,
               trigger_fn("refuse_restore", "IF current_query() LIKE 'COPY %' THEN "
                                            "RAISE EXCEPTION 'injected fault: restore refused'; END IF; RETURN NEW; ") +
                   "CREATE TRIGGER refuse_restore BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse_restore();",
               "", "restore/restore from the backup", "injected fault: restore refused", {"rollback_backup_"}, {}, false,
               true, false, "failed", {}});
  v.push_back({"CentralizedRestoreFailingVerify", "migration.centralized_restore", "migration/rollback_users.sql",
               fault::failing_verify,
               // the restore's COPY brings the users back marked as migrated ones
               trigger_fn("mark_migrated", "IF current_query() LIKE 'COPY %' THEN NEW.platform_metadata := "
                                           "coalesce(NEW.platform_metadata, '{}'::jsonb) || "
                                           "'{\"migrated_from_reactions\": \"true\"}'::jsonb; END IF; RETURN NEW; ") +
                   "CREATE TRIGGER mark_migrated BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION mark_migrated();",
               "", "restore/verify rollback", "migrated users are still there", {"rollback_backup_"}, {}, false, true,
               false, "rolled_back", {"restore from the backup"}});
  v.push_back({"CentralizedRestoreKilledConnection", "migration.centralized_restore", "migration/rollback_users.sql",
               fault::killed_connection, "", "SELECT count(*) FROM messages", "restore/restore from the backup",
               "57P01", {"rollback_backup_"}, {}, false, true, false, "failed", {}});

  // migration.centralized_reconcile: the missing rows re-migrated in one transaction.
  v.push_back({"CentralizedReconcileFailingStep", "migration.centralized_reconcile",
               "migration/centralized_reconcile.sql", fault::failing_step,
               trigger_fn("refuse", "RAISE EXCEPTION 'injected fault: no bot responses'; ") +
                   "CREATE TRIGGER refuse BEFORE INSERT ON bot_responses FOR EACH ROW EXECUTE FUNCTION refuse();",
               "", "re-migrate/missing responses", "injected fault: no bot responses"});
  v.push_back({"CentralizedReconcileFailingVerify", "migration.centralized_reconcile",
               "migration/centralized_reconcile.sql", fault::failing_verify,
               // one re-migrated query is silently dropped
               trigger_fn("drop_one", "IF NEW.id = (SELECT min(m.id) FROM messages m LEFT JOIN user_queries q ON q.id = m.id "
                                      "WHERE m.message_type = 'user_query' AND q.id IS NULL) THEN RETURN NULL; END IF; "
                                      "RETURN NEW; ") +
                   "CREATE TRIGGER drop_one BEFORE INSERT ON user_queries FOR EACH ROW EXECUTE FUNCTION drop_one();",
               "", "re-migrate/missing queries", "Missing queries: 1 left"});
  v.push_back({"CentralizedReconcileKilledConnection", "migration.centralized_reconcile",
               "migration/centralized_reconcile.sql", fault::killed_connection, "",
               "LOCK TABLE bot_responses IN SHARE MODE", "re-migrate/missing responses", "57P01"});

  // migration.platform_tables: migrations 003-006 in one transaction, then their verification.
  v.push_back({"PlatformTablesFailingStep", "migration.platform_tables", "migration/platform_tables.sql",
               fault::failing_step, failing_ddl("CREATE MATERIALIZED VIEW", "message_feedback_summary"), "",
               "migrate/005 feedback", "injected fault: CREATE MATERIALIZED VIEW refused", {}, {}, true, false, false,
               "rolled_back", {}});
  v.push_back({"PlatformTablesFailingVerify", "migration.platform_tables", "migration/platform_tables.sql",
               fault::failing_verify,
               // a DBA's event trigger drops one policy of every table the migration creates
               "CREATE FUNCTION drop_policy() RETURNS event_trigger LANGUAGE plpgsql AS $$ DECLARE r record; BEGIN "
               "FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE POLICY' "
               "AND object_identity LIKE 'feedback_delete%' LOOP EXECUTE 'DROP POLICY feedback_delete ON public.feedback'; "
               "END LOOP; END $$;\n"
               "CREATE EVENT TRIGGER drop_policy ON ddl_command_end WHEN TAG IN ('CREATE POLICY') "
               "EXECUTE FUNCTION drop_policy();",
               "", "verify/RLS policies", "feedback", {}, {}, true, false, false, "rolled_back",
               {"006 usage_metrics", "005 feedback", "004 messages", "003 conversations"}});
  v.push_back({"PlatformTablesKilledConnection", "migration.platform_tables", "migration/platform_tables.sql",
               fault::killed_connection, "", "LOCK TABLE tenants IN SHARE MODE", "migrate/003 conversations",
               "57P01", {}, {}, true, false, false, "rolled_back", {}});

  // migration.critical_fixes: backup, then the fixes in one transaction, verified.
  v.push_back({"CriticalFixesFailingStep", "migration.critical_fixes", "migration/critical_fixes.sql",
               fault::failing_step, failing_ddl("CREATE VIEW", "active_syncs"), "", "migrate/monitoring views",
               "injected fault: CREATE VIEW refused", {}, {"window=any"}, false, false, false, "rolled_back", {}});
  v.push_back({"CriticalFixesFailingVerify", "migration.critical_fixes", "migration/critical_fixes.sql",
               fault::failing_verify,
               // updates stop moving the version forward
               trigger_fn("zz_freeze_version", "NEW.version := OLD.version; RETURN NEW; ") +
                   "CREATE TRIGGER zz_freeze_version BEFORE UPDATE ON messenger_conversations FOR EACH ROW "
                   "EXECUTE FUNCTION zz_freeze_version();",
               "", "verify/upserts do not duplicate events", "expected 1", {}, {"window=any"}, false, false, false, "rolled_back",
               {"monitoring views", "sync functions", "sync tables", "unique event indexes", "version column"}});
  v.push_back({"CriticalFixesKilledConnection", "migration.critical_fixes", "migration/critical_fixes.sql",
               fault::killed_connection, "", "LOCK TABLE messenger_conversations IN SHARE MODE",
               "migrate/version column", "57P01", {}, {"window=any"}, false, false, false, "rolled_back", {}});

  // migration.organizations_import_fix: indexes built CONCURRENTLY (no transaction). Its
  // preflight refuses while any session of the server waits on a lock: a server of its own.
  std::vector<std::string> short_watch = {"watch_for=2s", "watch_every=1s"};
  v.push_back({"OrganizationsImportFixFailingStep", "migration.organizations_import_fix",
               "migration/organizations_import_fix.sql", fault::failing_step,
               failing_ddl("CREATE INDEX", "unique_organization_name_type_ci"), "",
               "constraints/case-insensitive unique index", "injected fault: CREATE INDEX refused", {}, short_watch, true,
               false, false, "rolled_back", {"exact-match unique index", "imports enabled"}});
  v.push_back({"OrganizationsImportFixFailingVerify", "migration.organizations_import_fix",
               "migration/organizations_import_fix.sql", fault::failing_verify,
               // the re-import's rows are renamed on the way in: no longer absorbed by ON CONFLICT
               trigger_fn("rename", "NEW.name := NEW.name || ' (copy)'; RETURN NEW; ") +
                   "CREATE TRIGGER rename BEFORE INSERT ON organizations FOR EACH ROW EXECUTE FUNCTION rename();",
               "", "verify/import with ON CONFLICT", "23505", {}, short_watch, true, false, false, "rolled_back",
               {"case-insensitive unique index", "exact-match unique index", "imports enabled"}});
  v.push_back({"OrganizationsImportFixKilledConnection", "migration.organizations_import_fix",
               "migration/organizations_import_fix.sql", fault::killed_connection, "",
               // an importer's open transaction: CREATE INDEX CONCURRENTLY waits for it to end
               "UPDATE organizations SET name = name WHERE id = 1", "constraints/exact-match unique index", "57P01",
               {}, short_watch, true, false, false, "rolled_back", {"imports enabled"}});

  // migration.rollback_users: users backed up, relinked and deleted in one transaction.
  v.push_back({"RollbackUsersFailingStep", "migration.rollback_users", "migration/rollback_users.sql",
               fault::failing_step,
               trigger_fn("refuse", "RAISE EXCEPTION 'injected fault: users are not deleted'; ") +
                   "CREATE TRIGGER refuse BEFORE DELETE ON users FOR EACH ROW EXECUTE FUNCTION refuse();",
               "", "rollback users/delete migrated users", "injected fault: users are not deleted", {}, {}, false, false,
               false, "rolled_back", {}});
  v.push_back({"RollbackUsersFailingVerify", "migration.rollback_users", "migration/rollback_users.sql",
               fault::failing_verify,
               // one migrated user survives the delete
               trigger_fn("keep_one", "IF OLD.id = (SELECT min(id) FROM users WHERE platform_user_id <> "
                                      "'MIGRATION_UNKNOWN_USER' AND platform_metadata->>'migrated_from_reactions' = "
                                      "'true') THEN RETURN NULL; END IF; RETURN OLD; ") +
                   "CREATE TRIGGER keep_one BEFORE DELETE ON users FOR EACH ROW EXECUTE FUNCTION keep_one();",
               "", "rollback users/delete migrated users", "migrated users remain", {}, {}, false, false, false,
               "rolled_back", {}});
  v.push_back({"RollbackUsersKilledConnection", "migration.rollback_users", "migration/rollback_users.sql",
               fault::killed_connection, "", "LOCK TABLE users IN SHARE MODE",
               "rollback users/delete migrated users", "57P01", {}, {}, false, false, false, "rolled_back", {}});
  return v;
}

INSTANTIATE_TEST_SUITE_P(MigrationRunbooks, Faults, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<fault_case>& i) { return i.param.id; });

}  // namespace
