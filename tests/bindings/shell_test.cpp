// shell.run and shell.sh from a runbook: results, check, timeouts that kill the whole process
// group, the `shell` audit record, and secrets redacted from it.
#include <gtest/gtest.h>
#include <signal.h>

#include <sstream>
#include <thread>

#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/run/executor.hpp"
#include "engine/util/secrets.hpp"
#include "tests/support/runbook_test.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb;
using nlohmann::json;
using strings = std::vector<std::string>;

/// Runbooks without a database (tests/support/runbook_test.hpp).
class Shell : public rb::testing::RunbookTest {};

TEST_F(Shell, RunReturnsCodeOutputAndDurationWithoutAShell) {
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    local code, out, err, secs = shell.run{ "printf", "%s|", "a b", "$HOME;", stdin = "ignored" }
    ctx.log(code, out, #err, type(secs))
    local c2, o2 = shell.run{ "sh", "-c", "echo $GREETING; exit 3", env = { GREETING = "hi" } }
    ctx.log(c2, o2)
    local _, o3 = shell.run{ "tr", "a-z", "A-Z", stdin = "fed through stdin", cwd = "/" }
    ctx.log(o3)
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"0 a b|$HOME;| 0 number", "3 hi\n", "FED THROUGH STDIN"}));
  auto recs = records("shell");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0]["argv"], (json{"printf", "%s|", "a b", "$HOME;"}));
  EXPECT_EQ(recs[0]["shell"], false);
  EXPECT_EQ(recs[1]["exit_code"], 3);
  EXPECT_EQ(recs[1]["stdout_tail"], "hi\n");
}

TEST_F(Shell, CheckTurnsANonZeroExitIntoAStepFailure) {
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    shell.run{ "sh", "-c", "echo broken >&2; exit 2", check = true }
  end } })lua");
  EXPECT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->kind, error_kind::shell);
  EXPECT_NE(o.error->message.find("exited with code 2: broken"), std::string::npos) << o.error->message;
}

TEST_F(Shell, ShGoesThroughBinShAndSaysSo) {
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    local code, out = shell.sh("echo $((6 * 7)) | tr 4 X")
    ctx.log(out)
  end } })lua");
  ASSERT_EQ(o.status, "succeeded");
  EXPECT_EQ(logged(), (strings{"X2\n"}));
  EXPECT_EQ(records("shell").at(0)["shell"], true);
  EXPECT_EQ(records("shell").at(0)["argv"][0], "/bin/sh");
}

TEST_F(Shell, ATimeoutKillsTheWholeProcessGroupIncludingGrandchildren) {
  auto pidfile = dir.path() / "grandchild.pid";
  auto t0 = std::chrono::steady_clock::now();
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    shell.sh("sleep 60 & echo $! > )lua" + pidfile.string() + R"lua(; wait", { timeout = "500ms" })
  end } })lua");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->kind, error_kind::timeout);
  pid_t grandchild = std::stoi(rb::testing::read_file(pidfile));
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = ::kill(grandchild, 0) != 0 || rb::testing::read_file("/proc/" + std::to_string(grandchild) + "/stat").find(" Z ") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone) << "grandchild " << grandchild << " survived";
  EXPECT_EQ(records("shell").at(0)["timed_out"], true);
}

TEST_F(Shell, TheStepDeadlineBoundsACommandWithoutItsOwnTimeout) {
  auto t0 = std::chrono::steady_clock::now();
  auto o = run(R"lua(runbook "t" { step "s" { timeout = "400ms", run = function(ctx) shell.run{ "sleep", "30" } end } })lua");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->kind, error_kind::timeout);
}

TEST_F(Shell, SecretsInArgvEnvAndOutputAreRedactedFromTheAudit) {
  secrets::add("tops3cret-value");
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    shell.run{ "sh", "-c", "echo token=$TOKEN; echo tops3cret-value >&2; exit 1", env = { TOKEN = "tops3cret-value" },
               check = true }
  end } })lua");
  EXPECT_EQ(o.status, "failed");
  std::string audit = rb::testing::read_file(log->path());
  EXPECT_EQ(audit.find("tops3cret-value"), std::string::npos) << audit;
  EXPECT_EQ(o.error->message.find("tops3cret-value"), std::string::npos) << o.error->message;
  EXPECT_NE(audit.find("token=***"), std::string::npos);
}

TEST_F(Shell, AMissingProgramIsAClearError) {
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx) shell.run{ "no-such-program-xyz" } end } })lua");
  ASSERT_TRUE(o.error);
  EXPECT_NE(o.error->message.find("no-such-program-xyz"), std::string::npos) << o.error->message;
}

}  // namespace
