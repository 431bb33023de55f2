// The command line as a user meets it: exit codes, messages for broken runbooks and bad
// params, --json, history, log and audit verify — all through the real binary.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::testing::cli_sandbox;
using rb::testing::temp_dir;
using nlohmann::json;

constexpr const char* k_good = R"lua(runbook "ops.good" {
  title = "A good runbook",
  params = { rows = { type = "integer", default = 3, doc = "how many" },
             mode = { type = "enum", values = { "fast", "safe" }, default = "safe" } },
  phase "only" {
    step "first" { run = function(ctx) ctx.log("rows=" .. ctx.params.rows) end,
                   rollback = function(ctx) ctx.log("undo first") end },
    step "second" { run = function(ctx) check(ctx.params.mode ~= "fast", "fast mode is refused") end },
  },
}
)lua";

class Cli : public ::testing::Test {
 protected:
  temp_dir dir{"rb-cli"};
  cli_sandbox cli{dir.path()};
  void SetUp() override { dir.write("runbooks/ops/good.lua", k_good); }
};

TEST_F(Cli, RunsARunbookByNameAndExitsZero) {
  auto r = cli.run({"run", "ops.good"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("rows=3"), std::string::npos);
  EXPECT_NE(r.out.find("[2/2] second: succeeded"), std::string::npos);
  EXPECT_EQ(cli.events("run.end").at(0)["status"], "succeeded");
}

TEST_F(Cli, JsonPrintsOneObjectWithRunAndStatus) {
  auto r = cli.run({"run", "ops.good", "--json", "--param", "mode=fast"});
  EXPECT_EQ(r.exit_code, 1);
  json j = json::parse(r.out);  // stdout holds exactly one JSON object
  EXPECT_EQ(j["status"], "rolled_back");
  EXPECT_EQ(j["run"], cli.events("run.start").at(0)["run"]);
  EXPECT_EQ(j["error"]["message"], "fast mode is refused");
  EXPECT_NE(r.err.find("undo first"), std::string::npos);  // progress went to stderr
}

TEST_F(Cli, AStepThatFailedWithOnErrorContinueExitsFourAndHistoryShowsIt) {
  dir.write("runbooks/ops/partial.lua", R"lua(runbook "ops.partial" {
    step "cleanup" { on_error = "continue", run = function() error("cleanup broke") end },
    step "report" { run = function(ctx) ctx.log("report ran") end },
  })lua");
  auto r = cli.run({"run", "ops.partial"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("report ran"), std::string::npos);
  EXPECT_NE(r.out.find("succeeded_with_failures"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("- main/cleanup"), std::string::npos) << r.out;
  EXPECT_EQ(cli.events("run.end").at(0)["status"], "succeeded_with_failures");
  auto h = cli.run({"history"});
  EXPECT_NE(h.out.find("succeeded_with_failures"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("failed steps: main/cleanup"), std::string::npos) << h.out;
  auto hj = json::parse(cli.run({"history", "--json"}).out);
  EXPECT_EQ(hj.at(0)["status"], "succeeded_with_failures");
  EXPECT_EQ(hj.at(0)["failed_steps"], json::array({"main/cleanup"}));
  auto help = cli.run({"--help"});
  EXPECT_NE(help.out.find("4 succeeded with failures"), std::string::npos) << help.out;
}

TEST_F(Cli, AFailingRollbackExitsThree) {
  dir.write("runbooks/ops/bad_undo.lua", R"lua(runbook "ops.bad_undo" {
    step "a" { run = function() end, rollback = function() error("undo broke") end },
    step "b" { run = function() error("b broke") end },
  })lua");
  auto r = cli.run({"run", "ops.bad_undo"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("rollback_failed"), std::string::npos);
}

TEST_F(Cli, BrokenRunbooksAreReportedWithFileAndLineBeforeAnythingRuns) {
  struct broken {
    const char* name;
    const char* source;
    const char* expect;  // must appear in the message
  };
  std::vector<broken> cases = {
      {"syntax", "runbook \"b.syntax\" {\n  step \"x\" { run = function( end },\n}\n", "runbooks/b/syntax.lua:2"},
      {"field", "runbook \"b.field\" {\n  titel = \"x\",\n  step \"s\" { run = function() end },\n}\n", "did you mean 'title'"},
      {"dupe", "runbook \"b.dupe\" {\n  step \"s\" { run = function() end },\n  step \"s\" { run = function() end },\n}\n", "runbooks/b/dupe.lua:3"},
      {"duration", "runbook \"b.duration\" {\n  step \"s\" { timeout = \"5 minutes\", run = function() end },\n}\n", "not a duration"},
      {"norun", "runbook \"b.norun\" {\n  step \"s\" { verify = function() end },\n}\n", "has no 'run' function"},
  };
  for (const auto& c : cases) {
    dir.write(std::string("runbooks/b/") + c.name + ".lua", c.source);
    auto checked = cli.run({"check", std::string("runbooks/b/") + c.name + ".lua"});
    EXPECT_EQ(checked.exit_code, 2) << c.name;
    EXPECT_NE(checked.out.find(c.expect), std::string::npos) << c.name << ": " << checked.out;
    EXPECT_NE(checked.out.find(std::string("runbooks/b/") + c.name + ".lua"), std::string::npos) << checked.out;
    auto ran = cli.run({"run", std::string("b.") + c.name});
    EXPECT_EQ(ran.exit_code, 2) << c.name;
    EXPECT_NE(ran.err.find(c.expect), std::string::npos) << c.name << ": " << ran.err;
  }
  EXPECT_TRUE(cli.records().empty()) << "a broken runbook must not start a run";
}

TEST_F(Cli, CheckPassesGoodRunbooks) {
  auto r = cli.run({"check"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("ok     ops.good"), std::string::npos);
}

TEST_F(Cli, BadParamsAreRefusedNamingTheParameter) {
  auto r = cli.run({"run", "ops.good", "--param", "rows=many"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("parameter 'rows' must be an integer, not 'many'"), std::string::npos) << r.err;
  r = cli.run({"run", "ops.good", "--param", "row=1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("did you mean 'rows'"), std::string::npos) << r.err;
  r = cli.run({"run", "ops.good", "--param", "mode=quick"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("one of fast, safe"), std::string::npos) << r.err;
  EXPECT_TRUE(cli.records().empty());
}

TEST_F(Cli, AnUnknownRunbookNameSuggestsTheClosestOne) {
  auto r = cli.run({"run", "ops.god"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no runbook named 'ops.god' (did you mean 'ops.good'?)"), std::string::npos) << r.err;
}

TEST_F(Cli, DestructiveStepsNeedYesWithoutATerminal) {
  dir.write("runbooks/ops/drop.lua", R"lua(runbook "ops.drop" {
    step "drop" { confirm = "drops the old tables", run = function(ctx) ctx.log("dropped") end },
  })lua");
  auto r = cli.run({"run", "ops.drop"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("drops the old tables"), std::string::npos) << r.err;
  EXPECT_TRUE(cli.records().empty());
  r = cli.run({"run", "ops.drop", "--yes"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(cli.events("confirm").at(0)["by"], "--yes");
}

TEST_F(Cli, DryRunRunsNoCodeAndWritesNoAudit) {
  auto r = cli.run({"run", "ops.good", "--dry-run"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("would run 'first'"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("rows=3"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(cli.audit_log()));
}

TEST_F(Cli, HistoryLogAndAuditVerifyDescribeRuns) {
  ASSERT_EQ(cli.run({"run", "ops.good", "--reason", "nightly"}).exit_code, 0);
  ASSERT_EQ(cli.run({"run", "ops.good", "-p", "mode=fast"}).exit_code, 1);
  auto h = cli.run({"history"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("succeeded"), std::string::npos);
  EXPECT_NE(h.out.find("rolled_back"), std::string::npos);
  EXPECT_NE(h.out.find("nightly"), std::string::npos);
  std::string run_id = cli.events("run.start").at(0)["run"];
  auto l = cli.run({"log", run_id});
  EXPECT_EQ(l.exit_code, 0);
  EXPECT_NE(l.out.find("run.start"), std::string::npos);
  EXPECT_NE(l.out.find("only/first"), std::string::npos);
  EXPECT_NE(l.out.find("run.end"), std::string::npos);
  auto v = cli.run({"audit", "verify"});
  EXPECT_EQ(v.exit_code, 0) << v.out;
  EXPECT_NE(v.out.find("chain intact"), std::string::npos);
}

TEST_F(Cli, AuditVerifyNamesTheFirstTamperedRecordAndFails) {
  ASSERT_EQ(cli.run({"run", "ops.good"}).exit_code, 0);
  std::vector<std::string> lines;
  {
    std::ifstream in(cli.audit_log());
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  auto pos = lines[3].find("\"event\"");
  ASSERT_NE(pos, std::string::npos);
  lines[3].insert(pos, "\"tampered\":true,");
  {
    std::ofstream out(cli.audit_log(), std::ios::trunc);
    for (auto& l : lines) out << l << "\n";
  }
  auto v = cli.run({"audit", "verify"});
  EXPECT_NE(v.exit_code, 0);
  EXPECT_NE(v.out.find("line 4"), std::string::npos) << v.out;
}

TEST_F(Cli, HelpDescribesEveryCommand) {
  auto r = cli.run({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* cmd : {"list", "show", "check", "run", "resume", "history", "log", "audit verify"})
    EXPECT_NE(r.out.find(cmd), std::string::npos) << cmd;
  auto run_help = cli.run({"run", "--help"});
  EXPECT_EQ(run_help.exit_code, 0);
  EXPECT_NE(run_help.out.find("--dry-run"), std::string::npos);
  auto bad = cli.run({"rnu"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("did you mean 'run'"), std::string::npos);
}

TEST_F(Cli, ListAndShowDescribeRunbooks) {
  auto l = cli.run({"list"});
  EXPECT_EQ(l.exit_code, 0);
  EXPECT_NE(l.out.find("ops.good"), std::string::npos);
  EXPECT_NE(l.out.find("A good runbook"), std::string::npos);
  auto s = cli.run({"show", "ops.good", "--format", "json"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  json j = json::parse(s.out);
  EXPECT_EQ(j["name"], "ops.good");
  EXPECT_EQ(j["phases"][0]["steps"][1]["name"], "second");
  EXPECT_EQ(j["params"][0]["name"], "mode");
  auto t = cli.run({"show", "ops.good"});
  EXPECT_NE(t.out.find("rows"), std::string::npos);
  EXPECT_NE(t.out.find("how many"), std::string::npos);
}

TEST_F(Cli, RunbooksAreAlsoFoundOnRunbookPath) {
  temp_dir other{"rb-cli-path"};
  other.write("team/cleanup.lua", R"lua(runbook "team.cleanup" { step "s" { run = function(ctx) ctx.log("cleaned") end } })lua");
  auto r = cli.run({"run", "team.cleanup"}, {{"RUNBOOK_PATH", other.path().string()}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("cleaned"), std::string::npos);
}

}  // namespace
