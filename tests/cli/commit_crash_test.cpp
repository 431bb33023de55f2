// Exactly once across a crash at COMMIT: the runbook process is SIGKILLed while the server runs
// a slow COMMIT (a deferred trigger that sleeps), and `runbook resume` asks the server what
// became of the phase's transaction instead of running the phase again. Also: a step killed
// outside a transaction after its INSERT is not repeated blindly.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <thread>

#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/db/connection.hpp"
#include "engine/run/executor.hpp"
#include "engine/run/journal.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/db_helpers.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/runbook_test.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using rb::testing::cli_sandbox;
using rb::testing::scalar;
using rb::testing::temp_dir;
using nlohmann::json;

/// Polls `cond` every 20 ms for up to `limit`.
template <class F>
bool eventually(F&& cond, std::chrono::milliseconds limit = 20s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

class CommitCrash : public ::testing::Test {
 protected:
  temp_dir dir{"rb-commit-crash"};
  cli_sandbox cli{dir.path()};
  std::string dsn = rb::testing::fresh_database("commit_crash");
  std::map<std::string, std::string> env{{"RUNBOOK_DSN", dsn}};
  std::unique_ptr<rb::db::connection> admin = rb::testing::connect(dsn, "admin");

  void SetUp() override {
    // The deferred trigger sleeps at COMMIT (once per transaction: for the row with id 1), so
    // the COMMIT is slow enough to kill the client in the middle of it.
    admin->script(R"sql(
      create table t (id int);  -- no key: rows applied twice would simply be there twice
      create table after (note text);
      create function slow_commit() returns trigger language plpgsql as $$
        begin if new.id = 1 then perform pg_sleep(2); end if; return null; end $$;
      create constraint trigger slow_at_commit after insert on t deferrable initially deferred
        for each row execute function slow_commit();
    )sql");
    dir.write("runbooks/crash/commit.lua", R"lua(runbook "crash.commit" {
      phase "load" { transaction = true,
        step "rows" { run = function(ctx) ctx.db:exec("insert into t select generate_series(1, 3)") end },
      },
      phase "then" {
        step "note" { run = function(ctx) ctx.db:exec("insert into after values ('ran')") end },
      },
    })lua");
  }

  /// The backend of the runbook process, while it runs COMMIT (inside the deferred trigger).
  int committing_backend() {
    auto r = admin->exec(
        "select pid from pg_stat_activity where datname = current_database() and application_name = 'runbook' "
        "and state = 'active' and query = 'COMMIT'");
    return r.rows.empty() ? 0 : std::stoi(r.rows[0][0].text);
  }

  /// Starts the run, waits until its COMMIT runs on the server, and SIGKILLs the process.
  /// Returns the backend still committing.
  int kill_during_commit() {
    pid_t pid = cli.spawn({"run", "crash.commit"}, env);
    EXPECT_GT(pid, 0);
    int backend = 0;
    bool seen = eventually([&] { return (backend = committing_backend()) != 0; });
    EXPECT_TRUE(seen) << "the run never reached its COMMIT";
    EXPECT_EQ(cli.events("phase.commit").size(), 1u) << "the transaction id is journaled before COMMIT";
    EXPECT_EQ(::kill(pid, SIGKILL), 0);
    int st = 0;
    ::waitpid(pid, &st, 0);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_TRUE(cli.events("phase.end").empty());
    EXPECT_TRUE(cli.events("run.end").empty());
    return backend;
  }

  std::string run_id() { return cli.events("run.start").at(0)["run"]; }
};

TEST_F(CommitCrash, ACommitThatWentThroughAfterTheProcessDiedIsNotRunAgain) {
  int backend = kill_during_commit();
  ASSERT_NE(backend, 0);
  // The server finishes the COMMIT on its own; the client is gone.
  ASSERT_TRUE(eventually([&] { return scalar(*admin, "select count(*) from t") == "3"; }));
  auto r = cli.run({"resume", run_id()}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(scalar(*admin, "select count(*) from t"), "3") << "the rows are applied exactly once";
  EXPECT_EQ(scalar(*admin, "select count(*) from after"), "1");
  EXPECT_EQ(cli.events("step.start", "rows").size(), 1u) << "the committed phase ran again";
  auto rec = cli.events("phase.recovered");
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0]["xact_status"], "committed");
  EXPECT_EQ(rec[0]["xid"], cli.events("phase.commit").at(0)["xid"]);
  EXPECT_EQ(rec[0]["action"], "done");
  auto ends = cli.events("run.end");
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0]["status"], "succeeded");
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
  EXPECT_NE(r.out.find("went through before the crash"), std::string::npos) << r.out;
}

TEST_F(CommitCrash, ACommitThatDidNotGoThroughRunsThePhaseAgainOnce) {
  int backend = kill_during_commit();
  ASSERT_NE(backend, 0);
  // The server loses the session mid-COMMIT: the transaction aborts.
  admin->exec("select pg_terminate_backend($1)", {std::to_string(backend)});
  rb::testing::wait_until_gone(*admin, backend);
  ASSERT_EQ(scalar(*admin, "select count(*) from t"), "0");
  auto r = cli.run({"resume", run_id()}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(scalar(*admin, "select count(*) from t"), "3");
  EXPECT_EQ(scalar(*admin, "select count(*) from after"), "1");
  auto rec = cli.events("phase.recovered");
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0]["xact_status"], "aborted");
  EXPECT_EQ(rec[0]["action"], "rerun");
  EXPECT_EQ(cli.events("step.start", "rows").size(), 2u);
  EXPECT_EQ(cli.events("phase.commit").size(), 2u) << "the second COMMIT is journaled with its own id";
  EXPECT_EQ(cli.events("run.end").at(0)["status"], "succeeded");
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
}

// A forged journal whose phase was committing when the process died, resumed through the real
// executor against the real server: in progress (the run stays open) and unknown (in doubt).
class CommitInDoubt : public rb::testing::RunbookTest {
 protected:
  std::string id = "20260101T000000Z-d0d0d0";

  void SetUp() override {
    dsn = rb::testing::fresh_database("commit_doubt");
    auto file = dir.write("runbooks/t.lua", R"lua(runbook "t" {
      phase "load" { transaction = true, step "rows" { run = function(ctx) ctx.log("rows ran") end } },
    })lua");
    sb = std::make_unique<rb::lua::sandbox>();
    rb::lua::open_all(*sb);
    book = rb::lua::load_runbook(*sb, file, "t");
    log = std::make_unique<rb::audit::log>(dir.path() / "audit.jsonl");
  }

  void crashed_while_committing(const std::string& xid) {
    log->append(id, "run.start", {{"runbook", "t"}, {"sha256", book.file_sha256}, {"params", json::object()}});
    log->append(id, "phase.start", {{"phase", "load"}, {"transaction", true}});
    log->append(id, "step.start", {{"phase", "load"}, {"step", "rows"}});
    log->append(id, "step.end", {{"phase", "load"}, {"step", "rows"}, {"status", "succeeded"}});
    log->append(id, "phase.commit", {{"phase", "load"}, {"xid", xid}});
  }

  rb::run::run_outcome resume(std::chrono::milliseconds patience) {
    rb::run::resolved_target t;
    t.name = "test";
    t.dsn = dsn;
    rb::run::target_session session(t);
    rb::run::executor exec(*log, out, clk, confirm);
    exec.use_target(session);
    rb::run::run_options opts;
    opts.commit_patience = patience;
    return exec.resume(book, rb::run::load_run(log->path(), id), opts);
  }
};

TEST_F(CommitInDoubt, ACommitStillRunningOnTheServerLeavesTheRunOpenUntilItEnds) {
  auto other = rb::testing::connect(dsn, "other");
  other->begin();
  std::string xid = scalar(*other, "select pg_current_xact_id()::text");
  crashed_while_committing(xid);
  try {
    resume(300ms);
    FAIL() << "expected the resume to stop in doubt";
  } catch (const rb::error& e) {
    EXPECT_EQ(e.kind(), rb::error_kind::in_doubt);
    EXPECT_NE(std::string(e.what()).find("still running"), std::string::npos) << e.what();
  }
  EXPECT_EQ(records("phase.in_doubt").at(0)["xact_status"], "in progress");
  EXPECT_TRUE(records("run.end").empty());
  other->commit();
  auto o = resume(300ms);
  EXPECT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_TRUE(logged().empty()) << "the committed phase ran again";
  EXPECT_EQ(records("phase.recovered").at(0)["xact_status"], "committed");
}

TEST_F(CommitInDoubt, AnOutcomeTheServerCannotTellEndsTheRunInDoubtWithoutRunningAnything) {
  crashed_while_committing("999999999999");  // not a transaction this server has seen
  auto o = resume(300ms);
  EXPECT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->kind, rb::error_kind::in_doubt);
  EXPECT_NE(o.error->message.find("check by hand"), std::string::npos) << o.error->message;
  EXPECT_TRUE(logged().empty());
  EXPECT_EQ(records("phase.in_doubt").at(0)["xact_status"], "unknown");
  EXPECT_EQ(records("phase.end").back()["status"], "in_doubt");
  EXPECT_TRUE(records("rollback.start").empty());
}

TEST_F(CommitInDoubt, AContinuedFailureInAPhaseThatRunsAgainCountsOnce) {
  book = {};  // its steps hold references into the old sandbox: drop them first
  auto file = dir.write("runbooks/t.lua", R"lua(runbook "t" {
    phase "load" { transaction = true,
      step "optional" { on_error = "continue", run = function(ctx) error("still broken") end },
      step "rows" { run = function(ctx) ctx.log("rows ran") end },
    },
  })lua");
  sb = std::make_unique<rb::lua::sandbox>();
  rb::lua::open_all(*sb);
  book = rb::lua::load_runbook(*sb, file, "t");
  // Crashed inside the phase's transaction, after "optional" failed and was let pass.
  log->append(id, "run.start", {{"runbook", "t"}, {"sha256", book.file_sha256}, {"params", json::object()}});
  log->append(id, "phase.start", {{"phase", "load"}, {"transaction", true}});
  log->append(id, "step.start", {{"phase", "load"}, {"step", "optional"}});
  log->append(id, "step.end", {{"phase", "load"}, {"step", "optional"}, {"status", "failed"}, {"on_error", "continue"}});
  log->append(id, "step.start", {{"phase", "load"}, {"step", "rows"}});
  auto o = resume(300ms);
  EXPECT_EQ(o.status, "succeeded_with_failures");
  EXPECT_EQ(o.continued, std::vector<std::string>{"load/optional"});
  EXPECT_EQ(logged(), std::vector<std::string>{"rows ran"});
}

// A step outside a transaction is killed after its INSERT ran, before its end was journaled.
TEST(InterruptedStep, AKilledInsertIsNotAppliedTwiceOnResume) {
  temp_dir dir{"rb-interrupted"};
  cli_sandbox cli{dir.path()};
  std::string dsn = rb::testing::fresh_database("interrupted");
  std::map<std::string, std::string> env{{"RUNBOOK_DSN", dsn}};
  auto admin = rb::testing::connect(dsn, "admin");
  admin->script("create table t (id serial, note text); create table hold (x int); insert into hold values (1);");
  dir.write("runbooks/crash/step.lua", R"lua(runbook "crash.step" {
    phase "copy" {
      step "insert" { run = function(ctx)
        ctx.db:exec("insert into t (note) values ('row')")
        if ctx.db:scalar("select count(*) from hold") > 0 then ctx.db:exec("select pg_sleep(30)") end
      end },
      step "after" { run = function(ctx) ctx.db:exec("insert into t (note) values ('after')") end },
    },
  })lua");
  pid_t pid = cli.spawn({"run", "crash.step"}, env);
  int backend = 0;
  ASSERT_TRUE(eventually([&] {
    auto r = admin->exec("select pid from pg_stat_activity where datname = current_database() and application_name = 'runbook' "
                         "and state = 'active' "
                         "and query = 'select pg_sleep(30)'");
    if (!r.rows.empty()) backend = std::stoi(r.rows[0][0].text);
    return backend != 0;
  }));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  admin->exec("select pg_terminate_backend($1)", {std::to_string(backend)});
  admin->exec("delete from hold");
  ASSERT_EQ(scalar(*admin, "select count(*) from t"), "1");
  std::string run_id = cli.events("run.start").at(0)["run"];

  auto refused = cli.run({"resume", run_id}, env);
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("step 'insert' of phase 'copy'"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--rerun-interrupted"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--mark-interrupted-done"), std::string::npos) << refused.err;
  EXPECT_EQ(scalar(*admin, "select count(*) from t"), "1");

  auto r = cli.run({"resume", run_id, "--mark-interrupted-done"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(scalar(*admin, "select string_agg(note, ',' order by id) from t"), "row,after");
  EXPECT_EQ(cli.events("step.recovered", "insert").at(0)["by"], "--mark-interrupted-done");
  EXPECT_EQ(cli.events("run.end").at(0)["status"], "succeeded");
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
}

}  // namespace
