// `runbook show NAME --format text|json|dot|mermaid` and `run --dry-run` on a runbook with a watch:
// the CLI picks the format, the engine renders it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* k_watch = R"lua(runbook "monitor.after" {
  step "deploy" { run = function() end, rollback = function() end },
  watch "after deploy" {
    every = "30s", lasting = "24h",
    metrics = { success_rate = [[select 1.0]], blocked = [[select 0]] },
    trigger "low success" { when = "success_rate < 0.5",
      action = investigate { window = "10m", unless = "blocked == 0", action = "rollback" } },
  },
}
)lua";

class ShowCli : public ::testing::Test {
 protected:
  rb::testing::temp_dir dir{"rb-show"};
  rb::testing::cli_sandbox cli{dir.path()};
  void SetUp() override { dir.write("runbooks/monitor/after.lua", k_watch); }
};

TEST_F(ShowCli, TextShowsTheWatchTree) {
  auto r = cli.run({"show", "monitor.after"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("  2. watch after deploy\n"));
  EXPECT_THAT(r.out, HasSubstr("     └─ 1. low success  [any time]"));
  EXPECT_THAT(r.out, HasSubstr("           └─ investigate for 10m\n"
                               "              ├─ unless blocked == 0 holds in that time: stand down\n"
                               "              └─ then rollback\n"));
}

TEST_F(ShowCli, JsonDotAndMermaidComeFromTheFormatOption) {
  auto j = cli.run({"show", "monitor.after", "--format", "json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto book = nlohmann::json::parse(j.out);
  EXPECT_EQ(book["phases"][1]["watch"]["triggers"][0]["action"]["then"]["kind"], "rollback");

  auto d = cli.run({"show", "monitor.after", "--format", "dot"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_THAT(d.out, StartsWith("digraph \"monitor.after\" {\n"));
  EXPECT_THAT(d.out, HasSubstr("p2_t1 -> p2_t1_a0 [label=\"yes\"];"));

  auto m = cli.run({"show", "monitor.after", "--format", "mermaid"});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  EXPECT_THAT(m.out, HasSubstr("\nflowchart TD\n"));
  EXPECT_THAT(m.out, HasSubstr("  p2_t1_a0 -->|\"not cleared in 10m<br/>(unless blocked == 0)\"| p2_t1_a1\n"));

  auto bad = cli.run({"show", "monitor.after", "--format", "mermeid"});
  EXPECT_EQ(bad.exit_code, rb::exit_codes::usage) << bad.out;
  EXPECT_THAT(bad.err + bad.out, HasSubstr("--format must be text, json, dot or mermaid, not 'mermeid' (did you mean 'mermaid'?)"));
}

TEST_F(ShowCli, DryRunListsTheWatch) {
  auto r = cli.run({"run", "monitor.after", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("would run 'deploy'"));
  EXPECT_THAT(r.out, HasSubstr("would watch 'after deploy' every 30.0s for 24h: 2 metrics (blocked, success_rate), "
                               "triggers in order 'low success' → investigate 10m unless blocked == 0, then rollback"));
  EXPECT_TRUE(cli.events("run.start").empty());  // nothing ran
}

TEST_F(ShowCli, AnIntervalTheRunbooksCodeSetsIsNotShownAsTheDefault) {
  // every / lasting written as functions of the params: show and --dry-run cannot know them
  // before the run, and must not print the built-in 30s / 30m as if they were the runbook's.
  dir.write("runbooks/monitor/param.lua", R"lua(runbook "monitor.param" {
  params = { every = { type = "duration", default = "5m" }, watch_for = { type = "duration", default = "24h" } },
  watch "usage" {
    every = function(ctx) return ctx.params.every end, lasting = function(ctx) return ctx.params.watch_for end,
    metrics = { n = [[select 1]] },
    trigger "many" { when = "n > 5", action = alert { severity = "warning", summary = "many" } },
  },
}
)lua");
  auto r = cli.run({"show", "monitor.param"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("every (set by the runbook's code at run time) for (set by the runbook's code at run time)"));
  EXPECT_EQ(r.out.find("30.0s"), std::string::npos) << r.out;
  auto j = cli.run({"show", "monitor.param", "--format", "json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto w = nlohmann::json::parse(j.out)["phases"][0]["watch"];
  EXPECT_TRUE(w["every"].is_null()) << w.dump();
  EXPECT_TRUE(w["lasting"].is_null()) << w.dump();
  auto d = cli.run({"run", "monitor.param", "--dry-run"});
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  EXPECT_THAT(d.out, HasSubstr("would watch 'usage' every (set by the runbook's code at run time)"));
}

}  // namespace
