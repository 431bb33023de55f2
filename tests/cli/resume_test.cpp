// Resume after a real crash: the CLI is killed with SIGKILL mid-step, then `runbook resume`
// finishes the run without repeating the step that had completed.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

TEST(Resume, ContinuesAfterKillDashNineWithoutRepeatingCompletedSteps) {
  temp_dir dir{"rb-resume"};
  // "slow" spins until a wall-clock moment a few seconds away: long enough to be killed in,
  // short enough that the resumed attempt finishes.
  dir.write("runbooks/crash/me.lua", R"lua(runbook "crash.me" {
    params = { until_time = { type = "integer", doc = "epoch seconds when 'slow' may finish" } },
    phase "work" {
      step "first" { run = function(ctx) audit.note("first ran") end },
      step "slow" { idempotent = true, run = function(ctx) while os.time() < ctx.params.until_time do end end },
      step "last" { run = function(ctx) audit.note("last ran") end },
    },
  })lua");
  cli_sandbox cli(dir.path());
  long long until_time = static_cast<long long>(std::time(nullptr)) + 3;
  pid_t pid = cli.spawn({"run", "crash.me", "--param", "until_time=" + std::to_string(until_time)});
  ASSERT_GT(pid, 0);
  // Wait for the journal to show that "slow" started, then crash the process.
  bool started = false;
  for (int i = 0; i < 200 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    started = !cli.events("step.start", "slow").empty();
  }
  ASSERT_TRUE(started) << "the run never reached step 'slow'";
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFSIGNALED(st));
  ASSERT_TRUE(cli.events("run.end").empty());

  std::string run_id = cli.events("run.start").at(0)["run"];
  auto hist = cli.run({"history"});
  EXPECT_NE(hist.out.find("interrupted"), std::string::npos) << hist.out;

  auto r = cli.run({"resume", run_id.substr(0, 20)});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(cli.events("step.start", "first").size(), 1u) << "a completed step ran again";
  EXPECT_EQ(cli.events("step.start", "slow").size(), 2u);
  EXPECT_EQ(cli.events("step.start", "last").size(), 1u);
  EXPECT_EQ(cli.events("note").size(), 2u);
  auto ends = cli.events("run.end");
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0]["status"], "succeeded");
  EXPECT_EQ(ends[0]["run"], run_id);
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
  // Resuming a finished run is refused.
  auto again = cli.run({"resume", run_id});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("already ended"), std::string::npos);
}

TEST(Resume, RefusesWhenTheRunbookFileChangedUnlessForced) {
  temp_dir dir{"rb-resume2"};
  dir.write("runbooks/crash/edit.lua", R"lua(runbook "crash.edit" {
    step "slow" { idempotent = true, run = function(ctx) while os.time() < ctx.params.t do end end },
    params = { t = { type = "integer" } },
  })lua");
  cli_sandbox cli(dir.path());
  pid_t pid = cli.spawn({"run", "crash.edit", "-p", "t=" + std::to_string(std::time(nullptr) + 2)});
  for (int i = 0; i < 200 && cli.events("step.start", "slow").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  std::string run_id = cli.events("run.start").at(0)["run"];
  dir.write("runbooks/crash/edit.lua", R"lua(runbook "crash.edit" {
    step "slow" { idempotent = true, run = function(ctx) audit.note("edited version") end },
    params = { t = { type = "integer" } },
  })lua");
  auto r = cli.run({"resume", run_id});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("changed"), std::string::npos) << r.err;
  auto forced = cli.run({"resume", run_id, "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(cli.events("note").at(0)["message"], "edited version");
}

}  // namespace
