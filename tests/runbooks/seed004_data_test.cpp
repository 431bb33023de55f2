// Seed 004's data-side incident playbooks (troubleshoot.points, amplify_quota, roles,
// user_sync, webhooks, email_matching, analytics; and the older orphans and duplicates), run for
// real against the LEAPS fixture (runbooks/troubleshoot/leaps.sql), which holds each symptom:
// the diagnosis names the problem in its audit notes, the confirmed fix changes the rows it
// should (and backs them up first), a second run finds nothing to fix, `runbook rollback` puts
// back what a fix changed, and a run nobody confirms skips every fix and still reports.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/db/connection.hpp"
#include "tests/runbooks/shipped_support.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb::testing::shipped;
using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

/// Every table of the fixture a playbook may change.
const std::vector<std::string> k_leaps_tables = {"users", "submissions", "points_ledger", "kajabi_events",
                                                 "submission_attachments"};

class Seed004Data : public ::testing::Test {
 protected:
  temp_dir dir{"rb-seed004"};
  cli_sandbox cli{dir.path()};

  void TearDown() override {
    if (std::filesystem::exists(cli.audit_log())) {
      EXPECT_EQ(cli.run({"audit", "verify"}, {{"RUNBOOK_PATH", k_shipped}}).exit_code, 0);
    }
  }

  static void expect_succeeded(const run_result& r) {
    EXPECT_EQ(r.proc.exit_code, 0) << r.describe();
    EXPECT_EQ(r.status(), "succeeded") << r.describe();
  }
  static std::string status_of(const run_result& r, const std::string& step) {
    return r.step_end(step).value("status", "");
  }
  static json result_of(const run_result& r, const std::string& step) {
    return r.step_end(step).value("result", json::object());
  }

  /// `runbook run NAME --json args...` against the fixture database, without --yes and with no
  /// terminal: nobody can confirm a fix.
  run_result run_without_yes(const std::string& name, std::vector<std::string> args, const fixture_db& db) {
    std::vector<std::string> argv{"run", name, "--json", "--dsn", db.dsn};
    argv.insert(argv.end(), args.begin(), args.end());
    run_result r;
    r.proc = cli.run(argv, {{"RUNBOOK_PATH", k_shipped}});
    r.outcome = json::parse(r.proc.out, nullptr, false);
    if (r.outcome.is_discarded() || !r.outcome.is_object()) r.outcome = json::object();
    for (auto& rec : cli.records())
      if (rec.value("run", "") == r.outcome.value("run", "")) r.records.push_back(rec);
    return r;
  }

  /// `runbook rollback RUN --yes` against the fixture database: undoes the run's fixes.
  void roll_back(const run_result& r, const fixture_db& db) {
    auto undo = cli.run({"rollback", r.outcome.value("run", ""), "--dsn", db.dsn, "--yes"}, {{"RUNBOOK_PATH", k_shipped}});
    EXPECT_EQ(undo.exit_code, 0) << undo.out << undo.err;
  }
};

// ---- Point calculation errors and reconciliation -------------------------------------------

TEST_F(Seed004Data, PointsCreditsOnlyTheShortfallAndASecondRunFindsNone) {
  fixture_db db("troubleshoot/leaps.sql");
  auto r = run(cli, "troubleshoot.points", {}, db.dsn);
  expect_succeeded(r);
  json diff = r.note("point differences");
  EXPECT_EQ(diff.value("missing", -1), 2) << diff.dump();         // user_09, user_10: PRESENT never credited
  EXPECT_EQ(diff.value("points_missing", -1), 40) << diff.dump();
  EXPECT_EQ(diff.value("excess", -1), 4) << diff.dump();          // 3 LEARN credited twice, the deleted user's AMPLIFY
  json negative = r.note("negative point totals");
  EXPECT_EQ(negative.value("users", -1), 1);
  EXPECT_EQ(negative["details"][0].value("user_id", ""), "user_11");

  EXPECT_EQ(result_of(r, "credit missing points").value("credited", 0), 2);
  EXPECT_EQ(db.scalar("SELECT string_agg(user_id || ':' || delta_points, ',' ORDER BY user_id) FROM points_ledger "
                      "WHERE source = 'RECONCILIATION'"),
            "user_09:20,user_10:20");
  // LEARN is counted once: user_02's second approved LEARN earns nothing.
  EXPECT_EQ(db.scalar("SELECT count(*) FROM points_ledger WHERE source = 'RECONCILIATION' AND activity_code = 'LEARN'"), "0");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM troubleshoot_backup WHERE source_table = 'points_ledger' AND action = 'inserted'"),
            "2");

  auto again = run(cli, "troubleshoot.points", {}, db.dsn);
  expect_succeeded(again);
  EXPECT_EQ(again.note("point differences").value("missing", -1), 0);
  EXPECT_EQ(status_of(again, "credit missing points"), "skipped");
}

TEST_F(Seed004Data, PointsRollbackRemovesWhatTheReconciliationCredited) {
  fixture_db db("troubleshoot/leaps.sql");
  std::string before = db.rows_of({"points_ledger"});
  auto r = run(cli, "troubleshoot.points", {}, db.dsn);
  expect_succeeded(r);
  ASSERT_NE(db.rows_of({"points_ledger"}), before);
  roll_back(r, db);
  EXPECT_EQ(db.rows_of({"points_ledger"}), before);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM troubleshoot_backup"), "0");
}

// ---- AMPLIFY quota exceeded --------------------------------------------------------------

TEST_F(Seed004Data, AmplifyQuotaNamesTheParticipantAndRaisesTheLimit) {
  fixture_db db("troubleshoot/leaps.sql");
  const std::string five_more = "INSERT INTO submissions (user_id, activity_code, payload) "
                                "VALUES ('user_12', 'AMPLIFY', '{\"peersTrained\": 5}')";
  {
    rb::db::connection c({db.dsn, "test", "seed_test"});
    EXPECT_ANY_THROW(c.exec(five_more));  // the symptom: 48 + 5 > 50
  }
  auto r = run(cli, "troubleshoot.amplify_quota", {"--param", "peer_limit=75"}, db.dsn);
  expect_succeeded(r);
  json limits = r.note("amplify quota limits");
  EXPECT_EQ(limits.value("peer_limit", 0), 50);
  EXPECT_EQ(limits.value("student_limit", 0), 200);
  EXPECT_TRUE(limits.value("enabled", false));
  json near = r.note("participants near the amplify quota");
  EXPECT_EQ(near.value("participants", -1), 1) << near.dump();
  EXPECT_EQ(near["details"][0].value("handle", ""), "handle12");
  EXPECT_EQ(near["details"][0].value("total_peers", 0), 48);  // the 12-day-old submission is outside the window

  EXPECT_EQ(status_of(r, "adjust quota limits"), "succeeded");
  EXPECT_EQ(status_of(r, "manual override"), "skipped");
  EXPECT_EQ(r.note("amplify quota limits changed")["to"].value("peer_limit", 0), 75);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM troubleshoot_backup WHERE source_table = 'function check_amplify_quota()'"), "1");
  {
    rb::db::connection c({db.dsn, "test", "seed_test"});
    EXPECT_NO_THROW(c.exec(five_more));  // 53 <= 75
  }

  auto again = run(cli, "troubleshoot.amplify_quota", {}, db.dsn);
  expect_succeeded(again);
  EXPECT_EQ(again.note("participants near the amplify quota").value("participants", -1), 0);
  EXPECT_EQ(again.note("amplify quota limits").value("peer_limit", 0), 75);
  EXPECT_EQ(status_of(again, "adjust quota limits"), "skipped");

  // The rollback puts the old definition back.
  roll_back(r, db);
  EXPECT_EQ(db.scalar("SELECT pg_get_functiondef('check_amplify_quota()'::regprocedure) LIKE "
                      "'%peer_limit CONSTANT integer := 50;%'"),
            "t");
}

TEST_F(Seed004Data, AmplifyOverrideInsertsOneSubmissionAndLeavesTheTriggerOn) {
  fixture_db db("troubleshoot/leaps.sql");
  auto r = run(cli, "troubleshoot.amplify_quota",
               {"--param", "override_user=user_12", "--param", "override_peers=10", "--param", "override_students=5"}, db.dsn);
  expect_succeeded(r);
  EXPECT_EQ(status_of(r, "adjust quota limits"), "skipped");
  std::string id = result_of(r, "manual override").value("submission", "");
  ASSERT_FALSE(id.empty()) << r.describe();
  EXPECT_EQ(db.scalar("SELECT payload->>'peersTrained' FROM submissions WHERE id = '" + id + "'"), "10");
  EXPECT_EQ(db.scalar("SELECT tgenabled FROM pg_trigger WHERE tgname = 'trg_check_amplify_quota'"), "O");
  EXPECT_EQ(db.scalar("SELECT row_data->>'id' FROM troubleshoot_backup WHERE action = 'inserted'"), id);
  {
    rb::db::connection c({db.dsn, "test", "seed_test"});  // the quota holds again for everyone else
    EXPECT_ANY_THROW(c.exec("INSERT INTO submissions (user_id, activity_code, payload) "
                            "VALUES ('user_12', 'AMPLIFY', '{\"peersTrained\": 1}')"));
  }
  roll_back(r, db);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM submissions WHERE id = '" + id + "'"), "0");
}

// ---- Role permission issues --------------------------------------------------------------

TEST_F(Seed004Data, RolesNormalisesInvalidRolesAndAssignsRolesByEmail) {
  fixture_db db("troubleshoot/leaps.sql");
  std::string before = db.rows_of({"users"});
  auto r = run(cli, "troubleshoot.roles", {"--param", "emails=p3@school.test, P4@School.test", "--param", "role=REVIEWER"},
               db.dsn);
  expect_succeeded(r);
  json invalid = r.note("invalid roles");
  EXPECT_EQ(invalid.value("users", -1), 3) << invalid.dump();
  EXPECT_EQ(invalid.value("normalisable", -1), 3);
  EXPECT_FALSE(invalid.value("role_check", true));  // lost in the restore
  EXPECT_EQ(r.note("users asked about").value("found", -1), 2);

  EXPECT_EQ(result_of(r, "normalise invalid roles").value("normalised", 0), 3);
  EXPECT_EQ(result_of(r, "assign role").value("changed", 0), 2);
  EXPECT_EQ(db.scalar("SELECT string_agg(id || '=' || role, ',' ORDER BY id) FROM users "
                      "WHERE id IN ('user_03', 'user_04', 'user_22', 'user_23', 'user_24')"),
            "user_03=REVIEWER,user_04=REVIEWER,user_22=ADMIN,user_23=REVIEWER,user_24=PARTICIPANT");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM troubleshoot_backup WHERE source_table = 'users'"), "5");

  auto again = run(cli, "troubleshoot.roles", {}, db.dsn);
  expect_succeeded(again);
  EXPECT_EQ(again.note("invalid roles").value("users", -1), 0);
  EXPECT_EQ(status_of(again, "normalise invalid roles"), "skipped");
  EXPECT_EQ(status_of(again, "assign role"), "skipped");

  roll_back(r, db);
  EXPECT_EQ(db.rows_of({"users"}), before);
}

TEST_F(Seed004Data, RolesForAnAddressNoUserHasChangeNothing) {
  fixture_db db("troubleshoot/leaps.sql");
  std::string before = db.rows_of({"users"});
  auto r = run(cli, "troubleshoot.roles", {"--param", "emails=p3@school.test,nobody@school.test", "--param", "role=ADMIN"},
               db.dsn);
  EXPECT_EQ(r.proc.exit_code, 1) << r.describe();
  EXPECT_EQ(r.status(), "rolled_back") << r.describe();
  EXPECT_NE(r.outcome["error"].value("message", "").find("1 of the 2 addresses belong to no user"), std::string::npos)
      << r.outcome.dump();
  EXPECT_EQ(db.rows_of({"users"}), before);  // the normalisation before it was undone too
}

// ---- User synchronisation ----------------------------------------------------------------

TEST_F(Seed004Data, UserSyncNamesTheMissingUserAndCreatesItFromClerksValues) {
  fixture_db db("troubleshoot/leaps.sql");
  auto r = run(cli, "troubleshoot.user_sync",
               {"--param", "clerk_id=user_deleted", "--param", "email=Gone.User@School.test", "--param", "name=Gone User"},
               db.dsn);
  expect_succeeded(r);
  json missing = r.note("users missing");
  EXPECT_EQ(missing.value("users", -1), 1) << missing.dump();
  EXPECT_EQ(missing["details"][0].value("user_id", ""), "user_deleted");
  EXPECT_EQ(missing["details"][0].value("submissions", 0), 3);
  EXPECT_EQ(missing["details"][0].value("points", 0), 4);
  EXPECT_EQ(r.note("incomplete users").value("users", -1), 0);

  EXPECT_TRUE(result_of(r, "upsert user from Clerk").value("created", false));
  EXPECT_EQ(db.scalar("SELECT handle || ' ' || name || ' ' || email || ' ' || role FROM users WHERE id = 'user_deleted'"),
            "goneuser Gone User gone.user@school.test PARTICIPANT");
  EXPECT_EQ(db.scalar("SELECT action FROM troubleshoot_backup WHERE row_data->>'id' = 'user_deleted'"), "inserted");

  auto again = run(cli, "troubleshoot.user_sync", {}, db.dsn);
  expect_succeeded(again);
  EXPECT_EQ(again.note("users missing").value("users", -1), 0);
  EXPECT_EQ(status_of(again, "upsert user from Clerk"), "skipped");
}

TEST_F(Seed004Data, UserSyncUpdatesAnExistingUserButNeverItsRole) {
  fixture_db db("troubleshoot/leaps.sql", "UPDATE users SET role = 'REVIEWER' WHERE id = 'user_05'");
  auto r = run(cli, "troubleshoot.user_sync",
               {"--param", "clerk_id=user_05", "--param", "email=p5@school.test", "--param", "name=Renamed Five"}, db.dsn);
  expect_succeeded(r);
  EXPECT_FALSE(result_of(r, "upsert user from Clerk").value("created", true));
  EXPECT_EQ(db.scalar("SELECT name || ' ' || role || ' ' || handle FROM users WHERE id = 'user_05'"), "Renamed Five REVIEWER handle5");
  EXPECT_EQ(db.scalar("SELECT row_data->>'name' FROM troubleshoot_backup WHERE action = 'changed'"), "Participant 5");
}

// ---- Kajabi webhook failures -------------------------------------------------------------

TEST_F(Seed004Data, WebhooksRemoveTheRetriedEventThenCreditTheBacklogOnce) {
  fixture_db db("troubleshoot/leaps.sql");
  auto r = run(cli, "troubleshoot.webhooks", {}, db.dsn);
  expect_succeeded(r);
  json backlog = r.note("webhook backlog");
  EXPECT_EQ(backlog.value("unprocessed", -1), 3) << backlog.dump();
  EXPECT_EQ(backlog.value("failed", -1), 3);  // all older than an hour
  EXPECT_GE(backlog.value("oldest_seconds", 0.0), 3 * 3600.0 - 60);
  json dups = r.note("duplicate webhook events");
  EXPECT_EQ(dups.value("received_twice", -1), 1) << dups.dump();
  EXPECT_EQ(dups.value("credited_twice", -1), 3);

  EXPECT_EQ(result_of(r, "remove duplicate events").value("deleted", 0), 1);
  json processed = result_of(r, "reprocess unprocessed events");
  EXPECT_EQ(processed.value("events", 0), 2) << processed.dump();
  EXPECT_EQ(processed.value("matched", 0), 1);
  EXPECT_EQ(processed.value("no_user", 0), 1);
  EXPECT_EQ(processed.value("credited", 0), 1);
  // Ben's course is credited once, the retried copy is gone (kept in the backup), the stranger's
  // event is marked NO_USER_FOUND.
  EXPECT_EQ(db.scalar("SELECT string_agg(external_event_id || ':' || delta_points, ',') FROM points_ledger "
                      "WHERE user_id = 'user_21'"),
            "kj_ben_1:20");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM kajabi_events WHERE id = 'kj_ben_1_retry'"), "0");
  EXPECT_EQ(db.scalar("SELECT action FROM troubleshoot_backup WHERE row_data->>'id' = 'kj_ben_1_retry'"), "changed");
  EXPECT_EQ(db.scalar("SELECT string_agg(id || '=' || user_match, ',' ORDER BY id) FROM kajabi_events "
                      "WHERE id IN ('kj_ben_1', 'kj_unmatched') AND processed_at IS NOT NULL"),
            "kj_ben_1=user_21,kj_unmatched=NO_USER_FOUND");

  auto again = run(cli, "troubleshoot.webhooks", {}, db.dsn);
  expect_succeeded(again);
  EXPECT_EQ(again.note("webhook backlog").value("unprocessed", -1), 0);
  EXPECT_EQ(again.note("duplicate webhook events").value("received_twice", -1), 0);
  EXPECT_EQ(status_of(again, "remove duplicate events"), "skipped");
  EXPECT_EQ(status_of(again, "reprocess unprocessed events"), "skipped");
}

TEST_F(Seed004Data, WebhooksRollbackRestoresTheEventsAndThePoints) {
  fixture_db db("troubleshoot/leaps.sql");
  std::string before = db.rows_of({"kajabi_events", "points_ledger"});
  auto r = run(cli, "troubleshoot.webhooks", {}, db.dsn);
  expect_succeeded(r);
  ASSERT_NE(db.rows_of({"kajabi_events", "points_ledger"}), before);
  roll_back(r, db);
  EXPECT_EQ(db.rows_of({"kajabi_events", "points_ledger"}), before);
}

// ---- Email matching ----------------------------------------------------------------------

TEST_F(Seed004Data, EmailMatchingRematchesACaseMismatchAndCreditsItsPoints) {
  fixture_db db("troubleshoot/leaps.sql");
  auto r = run(cli, "troubleshoot.email_matching", {}, db.dsn);
  expect_succeeded(r);
  json mismatches = r.note("email case mismatches");
  EXPECT_EQ(mismatches.value("events", -1), 1) << mismatches.dump();
  EXPECT_EQ(mismatches["details"][0].value("user_id", ""), "user_20");
  EXPECT_EQ(mismatches["details"][0].value("webhook_email", ""), "amira.tan@school.test");
  EXPECT_EQ(r.note("addresses shared by users").value("addresses", -1), 0);

  json rematched = result_of(r, "re-match events");
  EXPECT_EQ(rematched.value("matched", 0), 1) << rematched.dump();
  EXPECT_EQ(rematched.value("credited", 0), 1);
  EXPECT_EQ(db.scalar("SELECT user_match FROM kajabi_events WHERE id = 'kj_amira'"), "user_20");
  EXPECT_EQ(db.scalar("SELECT user_id || ':' || delta_points FROM points_ledger WHERE external_event_id = 'kj_amira'"),
            "user_20:20");
  EXPECT_EQ(db.scalar("SELECT row_data->>'user_match' FROM troubleshoot_backup WHERE row_data->>'id' = 'kj_amira'"),
            "NO_USER_FOUND");

  auto again = run(cli, "troubleshoot.email_matching", {}, db.dsn);
  expect_succeeded(again);
  EXPECT_EQ(again.note("email case mismatches").value("events", -1), 0);
  EXPECT_EQ(status_of(again, "re-match events"), "skipped");
}

// ---- Missing analytics data --------------------------------------------------------------

TEST_F(Seed004Data, AnalyticsFindsTheUnpopulatedViewAndRepopulatesIt) {
  fixture_db db("troubleshoot/leaps.sql");
  std::string before = db.rows_of(k_leaps_tables);
  auto r = run(cli, "troubleshoot.analytics", {}, db.dsn);
  expect_succeeded(r);
  EXPECT_GT(r.note("base table counts").value("points_ledger", 0), 0);
  json views = r.note("analytics views");
  EXPECT_EQ(views.value("missing", -1), 1) << views.dump();
  EXPECT_EQ(views["missing_views"], json::array({"activity_metrics"}));

  EXPECT_EQ(status_of(r, "refresh all analytics"), "succeeded");
  EXPECT_EQ(db.scalar("SELECT ispopulated FROM pg_matviews WHERE matviewname = 'activity_metrics'"), "t");
  EXPECT_EQ(db.scalar("SELECT approved FROM activity_metrics WHERE activity_code = 'PRESENT'"), "2");
  EXPECT_EQ(db.rows_of(k_leaps_tables), before);  // the base tables are untouched

  auto again = run(cli, "troubleshoot.analytics", {}, db.dsn);
  expect_succeeded(again);
  EXPECT_EQ(again.note("analytics views").value("missing", -1), 0);
  EXPECT_EQ(status_of(again, "refresh all analytics"), "skipped");
}

// ---- Declining the fixes -----------------------------------------------------------------

/// A playbook, the fix steps a run without --yes declines, and the note its diagnosis writes.
struct declined_case {
  std::string runbook;
  std::vector<std::string> args;
  std::vector<std::string> fixes;
  std::string diagnosis;
};

/// Without --yes and without a terminal, every fix is declined: the run reports its diagnosis,
/// records each fix skipped with the confirmation as its reason, changes no row, and exits 0.
TEST_F(Seed004Data, WithoutYesEveryFixIsSkippedAndTheDiagnosisStays) {
  const std::vector<declined_case> cases = {
      {"troubleshoot.points", {}, {"credit missing points"}, "point differences"},
      {"troubleshoot.amplify_quota", {"--param", "peer_limit=75", "--param", "override_user=user_12"},
       {"adjust quota limits", "manual override"}, "participants near the amplify quota"},
      {"troubleshoot.roles", {"--param", "emails=p3@school.test", "--param", "role=ADMIN"},
       {"normalise invalid roles", "assign role"}, "invalid roles"},
      {"troubleshoot.user_sync", {"--param", "clerk_id=user_deleted", "--param", "email=g@school.test", "--param", "name=G"},
       {"upsert user from Clerk"}, "users missing"},
      {"troubleshoot.webhooks", {}, {"remove duplicate events", "reprocess unprocessed events"}, "webhook backlog"},
      {"troubleshoot.email_matching", {}, {"re-match events"}, "email case mismatches"},
      {"troubleshoot.analytics", {}, {"refresh all analytics"}, "analytics views"},
      {"troubleshoot.orphans", {}, {"submissions", "points_ledger", "submission_attachments"}, "orphaned records found"},
      {"troubleshoot.duplicates", {}, {"reject older LEARN submissions", "remove points credited twice"},
       "duplicate LEARN submissions"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.runbook);
    fixture_db db("troubleshoot/leaps.sql");
    std::string before = db.rows_of(k_leaps_tables);
    auto r = run_without_yes(c.runbook, c.args, db);
    expect_succeeded(r);
    EXPECT_FALSE(r.note(c.diagnosis).is_null()) << r.describe();
    for (const auto& fix : c.fixes) {
      json end = r.step_end(fix);
      EXPECT_EQ(end.value("status", ""), "skipped") << fix << ": " << end.dump();
      EXPECT_TRUE(end.value("declined", false)) << fix << ": " << end.dump();
      EXPECT_NE(end.value("reason", "").find("not confirmed: nobody to ask and no --yes"), std::string::npos)
          << fix << ": " << end.dump();
    }
    EXPECT_EQ(db.rows_of(k_leaps_tables), before);
    EXPECT_EQ(db.scalar("SELECT ispopulated FROM pg_matviews WHERE matviewname = 'activity_metrics'"), "f");
    EXPECT_EQ(db.scalar("SELECT pg_get_functiondef('check_amplify_quota()'::regprocedure) LIKE "
                        "'%peer_limit CONSTANT integer := 50;%'"),
              "t");
  }
}

}  // namespace
