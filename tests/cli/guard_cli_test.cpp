// Guards through the CLI: a runbook whose guard says no exits 0, and history and --json say
// skipped, with the reason.
#include <gtest/gtest.h>

#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

TEST(GuardCli, ARunSkippedByItsGuardExitsZeroAndHistorySaysWhy) {
  temp_dir dir{"rb-cli-guard"};
  dir.write("runbooks/ops/weekly.lua", R"lua(runbook "ops.weekly" {
    guard = { function(ctx) return true end, function(ctx) return false, "replicas are " .. "behind" end },
    step "work" { run = function(ctx) ctx.log("the step ran") end },
  })lua");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"run", "ops.weekly", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["status"], "skipped");
  EXPECT_EQ(out["skip_reason"], "replicas are behind");
  EXPECT_NE(r.err.find("guard 2 of 2 said no: replicas are behind"), std::string::npos) << r.err;
  EXPECT_TRUE(cli.events("step.start").empty());
  auto g = cli.events("guard");
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[1]["reason"], "replicas are behind");

  auto h = cli.run({"history", "--json"});
  ASSERT_EQ(h.exit_code, 0) << h.err;
  auto runs = nlohmann::json::parse(h.out);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["status"], "skipped");
  EXPECT_EQ(runs[0]["skip_reason"], "replicas are behind");
  auto table = cli.run({"history"});
  EXPECT_NE(table.out.find("skipped: replicas are behind"), std::string::npos) << table.out;
  auto log = cli.run({"log", out["run"].get<std::string>()});
  EXPECT_NE(log.out.find("runbook guard 2 of 2: no: replicas are behind"), std::string::npos) << log.out;
  EXPECT_NE(log.out.find("ms) (replicas are behind)\n"), std::string::npos) << log.out;
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
}

TEST(GuardCli, ABrokenGuardFailsTheRun) {
  temp_dir dir{"rb-cli-guard"};
  dir.write("runbooks/ops/weekly.lua", R"lua(runbook "ops.weekly" {
    guard = function(ctx) return ctx.no_such_field.x end,
    step "work" { run = function(ctx) ctx.log("the step ran") end },
  })lua");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"run", "ops.weekly", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["status"], "failed");
  EXPECT_TRUE(cli.events("step.start").empty());
}

}  // namespace
