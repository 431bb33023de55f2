// Hostile runbooks through the real binary: a signal stops code stuck in a C function, a
// forged declaration is an error (not a crash) for check and list, and names that are not
// UTF-8 still give valid JSON.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <thread>

#include "tests/support/cli.hpp"
#include "tests/support/process_wait.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using nlohmann::json;
using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

using rb::testing::wait_exit;

class HostileCli : public ::testing::Test {
 protected:
  temp_dir dir{"rb-hostile-cli"};
  cli_sandbox cli{dir.path()};
};

TEST_F(HostileCli, SigtermStopsACatastrophicPatternWithinFiveSeconds) {
  dir.write("runbooks/ops/pattern.lua", R"lua(runbook "ops.pattern" {
    step "first" { run = function(ctx) ctx.log("first") end, rollback = function(ctx) ctx.log("undo first") end },
    step "match" { timeout = "10m", run = function()
      string.find(string.rep('a', 60), string.rep('a*', 12) .. 'b')
    end },
  })lua");
  pid_t pid = cli.spawn({"run", "ops.pattern"});
  ASSERT_TRUE(cli.wait_for("step.start", "match"));
  ASSERT_TRUE(rb::testing::wait_for_cpu(pid, std::chrono::milliseconds(200)));  // inside string.find
  ::kill(pid, SIGTERM);
  std::chrono::milliseconds took{};
  int code = wait_exit(pid, std::chrono::seconds(20), &took);
  EXPECT_GT(code, 0) << "the run must end with an exit code";
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_EQ(cli.events("step.end", "match").at(0)["error"]["kind"], "cancelled");
  EXPECT_EQ(cli.events("rollback.end", "first").at(0)["status"], "succeeded");
  EXPECT_EQ(cli.events("run.end").at(0)["status"], "cancelled");
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
}

TEST_F(HostileCli, CheckAndListRefuseAForgedDeclarationWithoutCrashing) {
  dir.write("runbooks/ops/forged.lua", R"lua(
    local d = step "real" { run = function() end }
    local tag
    for k in pairs(d) do if type(k) == "userdata" then tag = k end end
    runbook "ops.forged" { { [tag or "kind"] = "step" } })lua");
  auto check = cli.run({"check"});
  EXPECT_EQ(check.exit_code, 2) << check.out << check.err;
  EXPECT_NE((check.out + check.err).find("is not a phase"), std::string::npos) << check.out << check.err;
  auto list = cli.run({"list"});
  EXPECT_GE(list.exit_code, 0) << list.err;
  EXPECT_LT(list.exit_code, 128) << "list must not die of a signal: " << list.err;
}

TEST_F(HostileCli, NamesThatAreNotUtf8StillGiveValidJson) {
  dir.write("runbooks/ops/bytes.lua", "runbook \"ops.bytes\" { description = \"d\\255\", step \"s\\195\\40\" {\n"
                                      "  run = function() error(\"bad \\255 value\", 0) end } }\n");
  auto show = cli.run({"show", "ops.bytes", "--format", "json"});
  ASSERT_EQ(show.exit_code, 0) << show.out << show.err;
  json book = json::parse(show.out);  // throws on invalid UTF-8 or a truncated document
  EXPECT_EQ(book.dump().find("internal error"), std::string::npos);
  EXPECT_NE(book.dump().find("s\xEF\xBF\xBD("), std::string::npos) << book.dump();

  auto run = cli.run({"run", "ops.bytes", "--json"});
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  std::string last = run.out.substr(0, run.out.find_last_not_of('\n') + 1);
  json outcome = json::parse(last.substr(last.rfind('\n') + 1));
  EXPECT_EQ(outcome["error"]["message"], "bad \xEF\xBF\xBD value");
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
  EXPECT_EQ(cli.events("step.end").at(0)["error"]["message"], "bad \xEF\xBF\xBD value");
}

}  // namespace
