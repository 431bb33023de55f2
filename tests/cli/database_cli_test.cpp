// The CLI with a database: a shipped migration in --sandbox, the run lock between two
// processes, targets from runbook.lua, and secrets that never show in output or the audit.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <thread>

#include "engine/db/connection.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

const std::string k_shipped = std::string(RUNBOOK_SOURCE_DIR) + "/runbooks";

TEST(DatabaseCli, RunsTheShippedCentralizedMigrationInASandbox) {
  temp_dir dir{"rb-cli-db"};
  cli_sandbox cli(dir.path());
  auto r = cli.run({"run", "migration.centralized", "--sandbox", "--json"}, {{"RUNBOOK_PATH", k_shipped}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["status"], "succeeded");
  bool committed = false;
  for (auto& p : cli.events("phase.end"))
    if (p["phase"] == "migrate") committed = p["transaction"] == "committed";
  EXPECT_TRUE(committed);
  EXPECT_GT(cli.events("sql").size(), 10u);
  EXPECT_EQ(cli.events("run.start").at(0)["target"], "sandbox");
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
}

TEST(DatabaseCli, ASecondConcurrentRunExits75NamingTheHolder) {
  temp_dir dir{"rb-cli-lock"};
  dir.write("runbooks/ops/exclusive.lua", R"lua(runbook "ops.exclusive" {
    lock = true,
    step "hold" { run = function(ctx) ctx.db:exec("select pg_sleep(4)") end },
  })lua");
  cli_sandbox cli(dir.path());
  std::string dsn = rb::testing::fresh_database("cli_lock");
  pid_t first = cli.spawn({"run", "ops.exclusive"}, {{"RUNBOOK_DSN", dsn}});
  ASSERT_TRUE(cli.wait_for("step.start", "hold"));
  std::string holder = cli.events("run.start").at(0)["run"];
  auto second = cli.run({"run", "ops.exclusive"}, {{"RUNBOOK_DSN", dsn}});
  EXPECT_EQ(second.exit_code, 75) << second.err;
  EXPECT_NE(second.err.find(holder), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("already running"), std::string::npos) << second.err;
  int st = 0;
  ::waitpid(first, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  EXPECT_EQ(cli.events("run.start").size(), 1u) << "the refused run must not start";
  // The lock died with its holder's session: a new run gets it.
  EXPECT_EQ(cli.run({"run", "ops.exclusive"}, {{"RUNBOOK_DSN", dsn}}).exit_code, 0);
}

TEST(DatabaseCli, ACrashedHolderLeavesNoLockBehind) {
  temp_dir dir{"rb-cli-lock2"};
  // The holder is killed while its session is idle between statements, as a crashed runner's
  // would be: PostgreSQL sees the socket close, ends the session, and the lock goes with it.
  dir.write("runbooks/ops/exclusive.lua", R"lua(runbook "ops.exclusive" {
    lock = true,
    params = { spin = { type = "integer", default = 0 } },
    step "hold" { run = function(ctx)
      ctx.db:exec("select 1")
      local until_time = os.time() + ctx.params.spin
      while os.time() < until_time do end
    end },
  })lua");
  cli_sandbox cli(dir.path());
  std::string dsn = rb::testing::fresh_database("cli_lock_crash");
  pid_t first = cli.spawn({"run", "ops.exclusive", "--param", "spin=60"}, {{"RUNBOOK_DSN", dsn}});
  ASSERT_TRUE(cli.wait_for("step.start", "hold"));
  EXPECT_EQ(cli.run({"run", "ops.exclusive"}, {{"RUNBOOK_DSN", dsn}}).exit_code, 75);
  ::kill(first, SIGKILL);
  ::waitpid(first, nullptr, 0);
  int code = -1;
  for (int i = 0; i < 50 && code != 0; ++i) {
    code = cli.run({"run", "ops.exclusive"}, {{"RUNBOOK_DSN", dsn}}).exit_code;
    if (code != 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(code, 0) << "the crashed run's lock was still held";
}

TEST(DatabaseCli, SecretsNeverAppearInOutputErrorsOrTheAudit) {
  temp_dir dir{"rb-cli-secret"};
  const std::string password = "hunter2-s3cret-pw";
  auto& cluster = rb::testing::shared_cluster();
  std::string dsn = rb::testing::fresh_database("cli_secret");
  std::string dbname = dsn.substr(dsn.find("dbname=") + 7);
  dbname = dbname.substr(0, dbname.find(' '));
  dir.write("runbook.lua", "return { targets = {\n"
                           "  main = { dsn = \"host=" + cluster.socket_dir().string() + " port=" +
                               std::to_string(cluster.port()) + " dbname=" + dbname +
                               " user=postgres\", password = secret \"APP_PW\" },\n"
                           "  broken = { dsn = \"host=/nonexistent-dir port=1 dbname=x user=nobody\", password = secret \"APP_PW\" },\n"
                           "} }\n");
  dir.write("runbooks/ops/leaky.lua", R"lua(runbook "ops.leaky" {
    step "try to leak" { run = function(ctx)
      local pw = secret "APP_PW"
      ctx.log("the password is " .. pw)
      audit.note("note with " .. pw, { copy = pw })
      ctx.db:exec("select $1::text", pw)
      error("failing with " .. pw)
    end },
  })lua");
  cli_sandbox cli(dir.path());
  std::map<std::string, std::string> env{{"APP_PW", password}};
  auto r = cli.run({"run", "ops.leaky", "--target", "main"}, env);
  EXPECT_EQ(r.exit_code, 1);
  auto broken = cli.run({"run", "ops.leaky", "--target", "broken"}, env);
  EXPECT_NE(broken.exit_code, 0);
  auto log = cli.run({"log", cli.events("run.start").at(0)["run"]}, env);
  auto show = cli.run({"show", "ops.leaky"}, env);
  std::string audit = rb::testing::read_file(cli.audit_log());
  for (const auto* text : {&r.out, &r.err, &broken.out, &broken.err, &log.out, &show.out, &audit})
    EXPECT_EQ(text->find(password), std::string::npos) << *text;
  EXPECT_NE(r.out.find("the password is ***"), std::string::npos) << r.out;
  EXPECT_NE(audit.find("***"), std::string::npos);
}

TEST(DatabaseCli, AnUnknownTargetIsAUsageErrorWithASuggestion) {
  temp_dir dir{"rb-cli-target"};
  dir.write("runbook.lua", "return { targets = { primary = { dsn = \"host=/tmp dbname=x\" } } }\n");
  dir.write("runbooks/ops/t.lua", R"lua(runbook "ops.t" { step "s" { run = function(ctx) ctx.db:exec("select 1") end } })lua");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"run", "ops.t", "--target", "primry"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("did you mean 'primary'"), std::string::npos) << r.err;
}

TEST(DatabaseCli, ADatabaseStepWithoutATargetSaysHowToGiveOne) {
  temp_dir dir{"rb-cli-notarget"};
  dir.write("runbooks/ops/t.lua", R"lua(runbook "ops.t" { step "s" { run = function(ctx) ctx.db:exec("select 1") end } })lua");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"run", "ops.t"}, {{"RUNBOOK_DSN", ""}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("--sandbox"), std::string::npos) << r.out;
}

}  // namespace
