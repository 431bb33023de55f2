// Incidents through the real binary: a failed run opens one, `incidents` lists it (no secret
// in --json), `ack` and `resolve` change it, `check` refuses an unknown policy, `--follow`
// climbs levels while it runs, and the journal still verifies.
#include <gtest/gtest.h>

#include <signal.h>

#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using nlohmann::json;
using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

constexpr const char* k_config = R"lua(return {
  escalation = {
    database = { levels = {
      { after = "0m", notify = { "team" } },
      { after = "1s", notify = { "oncall" } },
    } },
  },
  default_escalation = "database",
})lua";

constexpr const char* k_failing = R"lua(runbook "ops.broken" {
  step "break" { run = function() error("cannot reach " .. secret "INC_TOKEN") end },
})lua";

class IncidentCli : public ::testing::Test {
 protected:
  temp_dir dir{"rb-incident-cli"};
  cli_sandbox cli{dir.path()};
  const std::string token = "tok-9f8e7d6c5b4a";
  std::map<std::string, std::string> env{{"INC_TOKEN", token}};

  void SetUp() override {
    dir.write("runbook.lua", k_config);
    dir.write("runbooks/ops/broken.lua", k_failing);
  }
  /// Runs the failing runbook and returns the incident it opened.
  std::string fail_once() {
    auto r = cli.run({"run", "ops.broken"}, env);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    auto opened = cli.events("incident.open");
    return opened.empty() ? "" : opened.back()["incident"].get<std::string>();
  }
};

TEST_F(IncidentCli, AFailedRunOpensAnIncidentThatIncidentsListsWithoutSecrets) {
  std::string id = fail_once();
  ASSERT_FALSE(id.empty());
  auto r = cli.run({"incidents", "--json"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json list = json::parse(r.out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["id"], id);
  EXPECT_EQ(list[0]["state"], "open");
  EXPECT_EQ(list[0]["level"], 1);
  EXPECT_EQ(list[0]["runbook"], "ops.broken");
  EXPECT_EQ(list[0]["severity"], "error");
  EXPECT_NE(list[0]["summary"].get<std::string>().find("cannot reach ***"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(token), std::string::npos);
  EXPECT_EQ(rb::testing::read_file(cli.audit_log()).find(token), std::string::npos);
  // The same failure again joins it.
  EXPECT_EQ(fail_once(), id);
  EXPECT_EQ(cli.events("incident.open").size(), 1u);
  auto text = cli.run({"incidents"});
  EXPECT_NE(text.out.find(id), std::string::npos);
  EXPECT_NE(text.out.find("LAST NOTIFICATION"), std::string::npos);
}

TEST_F(IncidentCli, AckThenResolveAndResolvingTwiceIsNotAnError) {
  std::string id = fail_once();
  auto ack = cli.run({"ack", id, "--by", "alice", "--note", "looking"});
  EXPECT_EQ(ack.exit_code, 0) << ack.err;
  EXPECT_NE(ack.out.find("acknowledged by alice"), std::string::npos) << ack.out;
  EXPECT_EQ(cli.events("incident.ack").at(0)["note"], "looking");
  auto res = cli.run({"resolve", id, "--note", "fixed the network"});
  EXPECT_EQ(res.exit_code, 0) << res.err;
  auto again = cli.run({"resolve", id});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("already resolved"), std::string::npos) << again.out;
  EXPECT_EQ(cli.events("incident.resolve").size(), 1u);
  auto open = cli.run({"incidents", "--json"});
  EXPECT_EQ(json::parse(open.out).size(), 0u);
  auto all = cli.run({"incidents", "--all", "--json"});
  EXPECT_EQ(json::parse(all.out).at(0)["state"], "resolved");
  auto verify = cli.run({"audit", "verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

TEST_F(IncidentCli, AnUnknownIdIsAUsageErrorWithDidYouMean) {
  std::string id = fail_once();
  std::string typo = id.substr(0, 9) + (id[9] == 'A' ? "B" : "A");
  auto r = cli.run({"ack", typo});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no incident '" + typo + "'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean '" + id + "'"), std::string::npos) << r.err;
}

TEST_F(IncidentCli, CheckNamesTheFileAndTheUnknownPolicy) {
  dir.write("runbooks/ops/typo.lua", R"lua(runbook "ops.typo" { escalation = "databse", step "s" { run = function() end } })lua");
  auto r = cli.run({"check", "runbooks/ops/typo.lua"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("typo.lua"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("escalation policy 'databse' is not defined in runbook.lua (did you mean 'database'?)"),
            std::string::npos)
      << r.out;
  auto run = cli.run({"run", "ops.typo"});
  EXPECT_EQ(run.exit_code, 2) << run.out << run.err;
  EXPECT_TRUE(cli.events("run.start").empty());
}

TEST_F(IncidentCli, CheckWithoutAnyConfigNotesThePolicyAndRunStillRefuses) {
  // A runbook repository without runbook.lua (the policy lives in the operator's config):
  // check cannot judge the name, says so, and passes; run refuses until a config defines it.
  std::filesystem::remove(dir.path() / "runbook.lua");
  dir.write("runbooks/ops/typo.lua", R"lua(runbook "ops.typo" { escalation = "databse", step "s" { run = function() end } })lua");
  auto r = cli.run({"check", "runbooks/ops/typo.lua"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ok     ops.typo"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("escalation policy 'databse' is not checked (no runbook.lua found"), std::string::npos) << r.out;
  auto run = cli.run({"run", "ops.typo"});
  EXPECT_EQ(run.exit_code, 2) << run.out << run.err;
  EXPECT_NE(run.err.find("escalation policy 'databse' is not defined"), std::string::npos) << run.err;
  EXPECT_TRUE(cli.events("run.start").empty());
}

TEST_F(IncidentCli, FollowClimbsLevelsWhileItRunsAndStopsOnSigterm) {
  std::string id = fail_once();
  pid_t pid = cli.spawn({"incidents", "--follow"});
  EXPECT_TRUE(cli.wait_for("incident.escalate"));
  ::kill(pid, SIGTERM);
  EXPECT_EQ(rb::testing::wait_exit(pid, std::chrono::seconds(10)), 0);
  auto climbed = cli.events("incident.escalate");
  ASSERT_EQ(climbed.size(), 1u);
  EXPECT_EQ(climbed[0]["incident"], id);
  EXPECT_EQ(climbed[0]["level"], 2);
  EXPECT_EQ(climbed[0]["notify"], json::array({"oncall"}));
}

}  // namespace
