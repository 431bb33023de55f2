// Ctrl-C: SIGINT mid-SQL and mid-shell stops the step and rolls back; --no-rollback leaves it
// for `runbook rollback`; a second SIGINT stops at once and `resume` finishes the rollback;
// `runbook rollback RUN --phase` undoes one phase of a finished run.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <thread>

#include "engine/db/connection.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/db_helpers.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/process_wait.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

std::string scalar(const std::string& dsn, const std::string& sql) {
  rb::db::connection c({dsn, "test", "test"});
  auto r = c.exec(sql);
  return r.rows.at(0).at(0).text;
}

using rb::testing::wait_exit;

class Cancel : public ::testing::Test {
 protected:
  temp_dir dir{"rb-cancel"};
  cli_sandbox cli{dir.path()};
  std::string dsn = rb::testing::fresh_database("cancel");
  std::map<std::string, std::string> env{{"RUNBOOK_DSN", dsn}};

  /// Waits until the run's session is running `query` on the server.
  void wait_until_sleeping(const std::string& query) const {
    rb::db::connection admin({dsn, "admin", "test"});
    rb::testing::wait_until_some_backend_runs(admin, query);
  }

  void SetUp() override {
    rb::db::connection c({dsn, "setup", "test"});
    c.exec("create table done (step text)");
    dir.write("runbooks/ops/slow.lua", R"lua(runbook "ops.slow" {
      params = { how = { type = "enum", values = { "sql", "shell" }, default = "sql" },
                 slow_undo = { type = "boolean", default = false } },
      phase "one" {
        step "first" {
          run = function(ctx) ctx.db:exec("insert into done values ('first')") end,
          rollback = function(ctx)
            local resumed = ctx.db:scalar("select count(*) from done where step = 'resumed'") > 0
            if ctx.params.slow_undo and not resumed then ctx.db:exec("select pg_sleep(30)") end
            ctx.db:exec("delete from done where step = 'first'")
          end,
        },
      },
      phase "two" {
        step "wait" { run = function(ctx)
          if ctx.params.how == "sql" then ctx.db:exec("select pg_sleep(60)")
          else shell.sh("sleep 60 & wait") end
        end },
        step "never" { run = function(ctx) ctx.db:exec("insert into done values ('never')") end },
      },
    })lua");
  }
};

TEST_F(Cancel, SigintMidSqlCancelsTheStatementAndRollsBack) {
  pid_t pid = cli.spawn({"run", "ops.slow"}, env);
  ASSERT_TRUE(cli.wait_for("step.start", "wait"));
  wait_until_sleeping("select pg_sleep(60)");
  ::kill(pid, SIGINT);
  std::chrono::milliseconds took{};
  EXPECT_EQ(wait_exit(pid, std::chrono::seconds(20), &took), 130);
  EXPECT_LT(took, std::chrono::seconds(10));
  EXPECT_EQ(scalar(dsn, "select count(*) from done"), "0");
  ASSERT_EQ(cli.events("run.cancel").size(), 1u);
  EXPECT_EQ(cli.events("run.cancel")[0]["signal"], SIGINT);
  EXPECT_EQ(cli.events("rollback.end", "first").at(0)["status"], "succeeded");
  auto end = cli.events("run.end").at(0);
  EXPECT_EQ(end["status"], "cancelled");
  EXPECT_EQ(end["rolled_back"], true);
  EXPECT_EQ(cli.events("step.end", "wait").at(0)["error"]["kind"], "cancelled");
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
}

TEST_F(Cancel, SigintMidShellKillsTheCommandAndRollsBack) {
  pid_t pid = cli.spawn({"run", "ops.slow", "--param", "how=shell"}, env);
  ASSERT_TRUE(cli.wait_for("step.start", "wait"));
  ASSERT_TRUE(rb::testing::wait_for_descendant(pid, "sleep"));
  ::kill(pid, SIGINT);
  std::chrono::milliseconds took{};
  EXPECT_EQ(wait_exit(pid, std::chrono::seconds(20), &took), 130);
  EXPECT_LT(took, std::chrono::seconds(10));
  EXPECT_EQ(cli.events("shell").at(0)["cancelled"], true);
  EXPECT_EQ(scalar(dsn, "select count(*) from done"), "0");
  EXPECT_EQ(cli.events("run.end").at(0)["status"], "cancelled");
}

TEST_F(Cancel, NoRollbackLeavesTheWorkForRunbookRollback) {
  pid_t pid = cli.spawn({"run", "ops.slow", "--no-rollback"}, env);
  ASSERT_TRUE(cli.wait_for("step.start", "wait"));
  wait_until_sleeping("select pg_sleep(60)");
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_exit(pid, std::chrono::seconds(20)), 130);
  EXPECT_EQ(scalar(dsn, "select count(*) from done"), "1");
  EXPECT_TRUE(cli.events("rollback.start").empty());
  std::string run_id = cli.events("run.start").at(0)["run"];
  auto r = cli.run({"rollback", run_id}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(scalar(dsn, "select count(*) from done"), "0");
  EXPECT_EQ(cli.events("run.end").back()["status"], "rolled_back");
}

TEST_F(Cancel, ASecondSigintStopsAtOnceAndResumeFinishesTheRollback) {
  pid_t pid = cli.spawn({"run", "ops.slow", "--param", "slow_undo=true"}, env);
  ASSERT_TRUE(cli.wait_for("step.start", "wait"));
  wait_until_sleeping("select pg_sleep(60)");
  ::kill(pid, SIGINT);
  ASSERT_TRUE(cli.wait_for("rollback.start", "first"));
  wait_until_sleeping("select pg_sleep(30)");  // the slow rollback handler is running
  ::kill(pid, SIGINT);
  std::chrono::milliseconds took{};
  EXPECT_EQ(wait_exit(pid, std::chrono::seconds(20), &took), 130);
  EXPECT_LT(took, std::chrono::seconds(10)) << "not at once: the handler sleeps 30 s";
  EXPECT_TRUE(cli.events("run.end").empty());
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0) << "the journal must be intact";
  // The server may still be sleeping in the killed session; end it so its lock on nothing lingers.
  rb::db::connection admin({dsn, "admin", "test"});
  admin.exec("select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()");
  admin.exec("insert into done values ('resumed')");
  std::string run_id = cli.events("run.start").at(0)["run"];
  auto r = cli.run({"resume", run_id}, env);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;  // the run as a whole did not succeed: it was undone
  EXPECT_EQ(cli.events("run.end").back()["status"], "rolled_back");
  EXPECT_TRUE(cli.events("step.start", "never").empty());
  EXPECT_EQ(scalar(dsn, "select string_agg(step, ',') from done"), "resumed");
}

TEST_F(Cancel, RollbackOfOnePhaseOfASucceededRun) {
  dir.write("runbooks/ops/two.lua", R"lua(runbook "ops.two" {
    phase "a" { step "a1" { run = function(ctx) ctx.db:exec("insert into done values ('a1')") end,
                            rollback = function(ctx) ctx.db:exec("delete from done where step = 'a1'") end } },
    phase "b" { step "b1" { run = function(ctx) ctx.db:exec("insert into done values ('b1')") end,
                            rollback = function(ctx) ctx.db:exec("delete from done where step = 'b1'") end } },
  })lua");
  ASSERT_EQ(cli.run({"run", "ops.two"}, env).exit_code, 0);
  std::string run_id = cli.events("run.start").at(0)["run"];
  auto r = cli.run({"rollback", run_id, "--phase", "b"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(scalar(dsn, "select string_agg(step, ',') from done"), "a1");
  auto again = cli.run({"rollback", run_id, "--phase", "b"}, env);  // already undone: nothing to do
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("nothing to roll back"), std::string::npos) << again.out;
  auto bad = cli.run({"rollback", run_id, "--phase", "c"}, env);
  EXPECT_EQ(bad.exit_code, 2);
}

}  // namespace
