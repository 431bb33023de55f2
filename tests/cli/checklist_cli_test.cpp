// Declined confirmations that skip (confirm = { "...", on_decline = "skip" }) and checklists,
// through the CLI: what the run does, prints, audits and exits with.
#include <gtest/gtest.h>

#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::testing::cli_sandbox;
using rb::testing::temp_dir;
using json = nlohmann::json;

const char* k_playbook = R"lua(runbook "ops.playbook" {
  step "diagnose" { run = function(ctx) ctx.log("found 3 stale rows") return { stale = 3 } end },
  step "fix" {
    confirm = { "Deletes 3 stale rows", on_decline = "skip" },
    run = function(ctx) ctx.log("the fix ran") end,
  },
  step "report" { run = function(ctx) ctx.log("report written") end },
})lua";

TEST(ConfirmCli, ADeclinedFixThatSkipsKeepsTheDiagnosisAndTheReport) {
  temp_dir dir{"rb-cli-confirm"};
  dir.write("runbooks/ops/playbook.lua", k_playbook);
  cli_sandbox cli(dir.path());
  auto r = cli.run({"run", "ops.playbook", "--json"});  // no --yes, no terminal
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto out = json::parse(r.out);
  EXPECT_EQ(out["status"], "succeeded");
  EXPECT_NE(r.err.find("fix: skipped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not confirmed: nobody to ask and no --yes (Deletes 3 stale rows)"), std::string::npos) << r.err;
  std::vector<std::string> logged;
  for (const auto& l : cli.events("log")) logged.push_back(l.value("message", ""));
  EXPECT_EQ(logged, (std::vector<std::string>{"found 3 stale rows", "report written"}));
  json fix_end;
  for (const auto& e : cli.events("step.end"))
    if (e.value("step", "") == "fix") fix_end = e;
  EXPECT_EQ(fix_end.value("status", ""), "skipped");
  EXPECT_TRUE(fix_end.value("declined", false));
  EXPECT_NE(fix_end.value("reason", "").find("Deletes 3 stale rows"), std::string::npos);
  auto c = cli.events("confirm");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]["answer"], "no");
  EXPECT_EQ(c[0]["by"], "none");
  EXPECT_EQ(c[0]["on_decline"], "skip");

  auto yes = cli.run({"run", "ops.playbook", "--yes", "--json"});
  EXPECT_EQ(yes.exit_code, 0) << yes.err;
  bool fixed = false;
  for (const auto& l : cli.events("log")) fixed = fixed || l.value("message", "") == "the fix ran";
  EXPECT_TRUE(fixed);
}

TEST(ConfirmCli, AStepThatFailsOnDeclineStillRefusesTheRunUpFrontNamingOnlyIt) {
  temp_dir dir{"rb-cli-confirm"};
  dir.write("runbooks/ops/mixed.lua", R"lua(runbook "ops.mixed" {
    step "optional cleanup" { confirm = { "Drops the scratch table", on_decline = "skip" }, run = function(ctx) end },
    step "migrate" { confirm = { "Rewrites every user", on_decline = "fail" }, run = function(ctx) end },
  })lua");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"run", "ops.mixed"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("step 'migrate' of phase 'main' (Rewrites every user)"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("optional cleanup"), std::string::npos) << r.err;
  EXPECT_TRUE(cli.events("run.start").empty());
}

TEST(ConfirmCli, AMalformedConfirmIsALoadErrorAtItsLine) {
  temp_dir dir{"rb-cli-confirm"};
  dir.write("runbooks/ops/bad.lua", "runbook \"ops.bad\" {\n"
                                    "  step \"fix\" {\n"
                                    "    confirm = { \"Deletes rows\", on_decline = \"ignore\" },\n"
                                    "    run = function(ctx) end,\n"
                                    "  },\n"
                                    "}\n");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"check", "runbooks"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("bad.lua:2: step 'fix': confirm's on_decline = \"ignore\" is not \"skip\" or \"fail\""),
            std::string::npos)
      << r.out << r.err;
}

const char* k_checklist = R"lua(runbook "ops.deploy" {
  phase "change" {
    step "add column" {
      run = function(ctx) ctx.log("column added") end,
      rollback = function(ctx) ctx.log("column dropped") end,
    },
  },
  checklist "success criteria" {
    %s
    { "no duplicate events", check = function(ctx) return true, "0 duplicates" end },
    { "completion rate at least 95%%", check = function(ctx) return 0.91 >= 0.95, "91%% of syncs completed" end },
    { "errors below 1%%", check = function(ctx) error("the error table is missing") end },
    { "support team briefed", manual = "Confirm support has read the release note" },
  },
})lua";

std::string checklist_runbook(const std::string& option) {
  char buf[2048];
  std::snprintf(buf, sizeof buf, k_checklist, option.c_str());
  return buf;
}

TEST(ChecklistCli, EveryItemIsCheckedAuditedAndPrintedAndAFailedCheckRollsTheRunBack) {
  temp_dir dir{"rb-cli-checklist"};
  dir.write("runbooks/ops/deploy.lua", checklist_runbook(""));
  cli_sandbox cli(dir.path());
  auto r = cli.run({"run", "ops.deploy", "--yes", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto out = json::parse(r.out);
  EXPECT_EQ(out["status"], "rolled_back");
  EXPECT_NE(out["error"].value("message", "").find("checklist 'success criteria': 2 of 4 items failed"),
            std::string::npos) << out.dump();

  std::map<std::string, std::string> outcome;
  for (const auto& i : cli.events("checklist.item")) outcome[i.value("step", "")] = i.value("outcome", "");
  EXPECT_EQ(outcome, (std::map<std::string, std::string>{{"no duplicate events", "passed"},
                                                         {"completion rate at least 95%", "failed"},
                                                         {"errors below 1%", "failed"},
                                                         {"support team briefed", "unconfirmed"}}));
  auto end = cli.events("checklist.end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]["passed"], 1);
  EXPECT_EQ(end[0]["failed"], 2);
  EXPECT_EQ(end[0]["unconfirmed"], 1);  // --yes does not answer for a person
  EXPECT_NE(r.err.find("[x] no duplicate events — 0 duplicates"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[!] completion rate at least 95% (failed) — 91% of syncs completed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[!] errors below 1% (failed) — the error table is missing"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[ ] support team briefed (unconfirmed)"), std::string::npos) << r.err;
  auto log = cli.run({"log", out["run"].get<std::string>()});
  EXPECT_NE(log.out.find("failed: 91% of syncs completed"), std::string::npos) << log.out;
  EXPECT_NE(log.out.find("1 passed, 2 failed, 0 confirmed, 1 unconfirmed"), std::string::npos) << log.out;
  bool undone = false;
  for (const auto& l : cli.events("log")) undone = undone || l.value("message", "") == "column dropped";
  EXPECT_TRUE(undone) << "a failed checklist takes the run's failure path: the change is rolled back";
}

TEST(ChecklistCli, WithOnErrorContinueTheRunSucceedsWithFailuresAndKeepsItsWork) {
  temp_dir dir{"rb-cli-checklist"};
  dir.write("runbooks/ops/deploy.lua", checklist_runbook("on_error = \"continue\","));
  cli_sandbox cli(dir.path());
  auto r = cli.run({"run", "ops.deploy", "--yes", "--json"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  auto out = json::parse(r.out);
  EXPECT_EQ(out["status"], "succeeded_with_failures");
  EXPECT_EQ(out["continued"].size(), 2u) << out.dump();
  for (const auto& l : cli.events("log")) EXPECT_NE(l.value("message", ""), "column dropped");
}

TEST(ChecklistCli, ItemsWithoutACheckOrAManualTextAreLoadErrors) {
  temp_dir dir{"rb-cli-checklist"};
  dir.write("runbooks/ops/bad.lua", "runbook \"ops.bad\" {\n"
                                    "  step \"s\" { run = function(ctx) end },\n"
                                    "  checklist \"after\" {\n"
                                    "    { \"rows match\" },\n"
                                    "  },\n"
                                    "}\n");
  dir.write("runbooks/ops/twice.lua", "runbook \"ops.twice\" {\n"
                                      "  checklist \"after\" {\n"
                                      "    { \"told\", manual = \"yes\" }, { \"told\", manual = \"again\" },\n"
                                      "  },\n"
                                      "}\n");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"check", "runbooks"});
  EXPECT_NE(r.exit_code, 0);
  std::string all = r.out + r.err;
  EXPECT_NE(all.find("bad.lua:3: checklist 'after': item 1 ('rows match') needs exactly one of check = function or "
                     "manual = \"text\""),
            std::string::npos) << all;
  EXPECT_NE(all.find("twice.lua:2: checklist 'after' lists 'told' twice"), std::string::npos) << all;
}

}  // namespace
