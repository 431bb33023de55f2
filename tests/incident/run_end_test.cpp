// Incidents from real runs through the executor against the test PostgreSQL: a failed run
// opens one, a repeated failure joins it, a later successful run resolves it; escalate{} from
// runbook code opens one at once, and declares an action while a file is being loaded.
#include <gtest/gtest.h>

#include <sstream>

#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/incident/run_end.hpp"
#include "engine/run/target.hpp"
#include "tests/incident/recording_notifier.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/runbook_test.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* k_book = R"lua(runbook "t" {
  params = { fail = { type = "boolean", default = false } },
  step "touch the database" {
    run = function(ctx)
      check(ctx.db:scalar("select 1") == 1, "no answer")
      check(not ctx.params.fail, "the migration broke")
    end,
  },
})lua";

class RunIncidents : public ::testing::Test {
 protected:
  rb::testing::temp_dir dir{"rb-run-incident"};
  std::string dsn = rb::testing::fresh_database("incidents");
  std::unique_ptr<rb::lua::sandbox> sb;
  rb::run::runbook_def book;
  rb::audit::log journal{dir.path() / "audit.jsonl"};
  std::ostringstream output;
  rb::run::reporter out{output, rb::run::reporter_options{}};
  rb::testing::instant_clock steady;
  rb::testing::no_confirm confirm;
  rb::testing::fake_clock clk;
  rb::testing::recording_notifier sent;
  rb::run::config cfg;

  void SetUp() override {
    json spec = {{"levels", json::array({{{"after", "0m"}, {"notify", {"team"}}}, {{"after", "5m"}, {"notify", {"oncall"}}}})}};
    cfg.escalation.policies["database"] = rb::incident::policy::from_config("database", spec, "runbook.lua");
    cfg.escalation.default_policy = "database";
  }

  void load(const std::string& source) {
    auto file = dir.write("runbooks/t.lua", source);
    book = {};
    sb = rb::lua::make_sandbox({});
    book = rb::lua::load_runbook(*sb, file, "t");
  }

  /// Runs the loaded runbook against `target` and hands its end to incidents, as the CLI does.
  rb::incident::run_end_report run(bool fail, const std::string& target = "primary") {
    rb::run::resolved_target t;
    t.name = target;
    t.dsn = dsn;
    rb::run::target_session session(t);
    rb::run::executor exec(journal, out, steady, confirm);
    exec.use_target(session);
    exec.use_config(cfg);
    exec.use_notifier(&sent);
    rb::run::run_options opts;
    opts.params = {{"fail", fail}};
    opts.yes = true;
    rb::run::run_outcome o = exec.run(book, opts);
    return rb::incident::on_run_end(journal, cfg.escalation, &sent, clk, o, book, target);
  }

  std::vector<json> records(const std::string& event) {
    std::vector<json> r;
    rb::audit::for_each_record(journal.path(), [&](const json& rec) {
      if (rec["event"] == event) r.push_back(rec);
    });
    return r;
  }
};

TEST_F(RunIncidents, AFailedRunOpensAnIncidentAndTheNextSuccessfulRunResolvesIt) {
  load(k_book);
  auto failed = run(true);
  ASSERT_TRUE(failed.error.empty()) << failed.error;
  ASSERT_EQ(failed.changes.size(), 1u);
  auto inc = failed.changes[0].what.inc;
  EXPECT_EQ(inc.runbook, "t");
  EXPECT_EQ(inc.target, "primary");
  EXPECT_EQ(inc.state, "open");
  EXPECT_NE(inc.summary.find("the migration broke"), std::string::npos) << inc.summary;
  ASSERT_EQ(sent.to("team").size(), 1u);
  EXPECT_EQ(sent.to("team")[0].action, "trigger");
  EXPECT_EQ(records("incident.open").at(0)["source_run"], records("run.start").at(0)["run"]);

  auto ok = run(false);
  ASSERT_EQ(ok.changes.size(), 1u);
  EXPECT_EQ(ok.changes[0].what.inc.id, inc.id);
  EXPECT_EQ(ok.changes[0].what.inc.state, "resolved");
  ASSERT_EQ(sent.to("team").size(), 2u);
  EXPECT_EQ(sent.to("team")[1].action, "resolve");
  EXPECT_EQ(sent.to("team")[1].dedup, sent.to("team")[0].dedup);
  EXPECT_EQ(records("incident.resolve").at(0)["reason"], "run succeeded");
  // Nothing more to resolve: another successful run writes nothing.
  EXPECT_TRUE(run(false).changes.empty());
}

TEST_F(RunIncidents, ARepeatedFailureJoinsAndAnotherTargetGetsItsOwn) {
  load(k_book);
  auto first = run(true).changes.at(0).what.inc;
  auto second = run(true).changes.at(0);
  EXPECT_EQ(second.what.inc.id, first.id);
  EXPECT_FALSE(second.what.changed);
  auto other = run(true, "staging").changes.at(0).what.inc;
  EXPECT_NE(other.id, first.id);
  EXPECT_EQ(records("incident.open").size(), 2u);
  EXPECT_EQ(sent.to("team").size(), 2u);
  // A success on staging resolves staging's incident only.
  auto ok = run(false, "staging");
  ASSERT_EQ(ok.changes.size(), 1u);
  EXPECT_EQ(ok.changes[0].what.inc.id, other.id);
  rb::incident::store s(journal);
  EXPECT_EQ(s.find(first.id)->state, "open");
}

TEST_F(RunIncidents, NoPolicyNoIncident) {
  cfg.escalation.default_policy.reset();
  load(k_book);
  EXPECT_TRUE(run(true).changes.empty());
  EXPECT_TRUE(records("incident.open").empty());
}

TEST_F(RunIncidents, EscalateFromARunOpensAnIncidentAtOnceAndReturnsItsId) {
  load(R"lua(runbook "t" {
    step "look" {
      run = function(ctx)
        local id = escalate{ level = 2, summary = "error rate above 25%", severity = "critical", cause = "error rate" }
        ctx.log("incident " .. id)
        local again = escalate{ level = 2, summary = "still bad", cause = "error rate" }
        check(again == id, "joined a different incident")
      end,
    },
  })lua");
  auto o = run(false);
  ASSERT_EQ(records("incident.open").size(), 1u);
  json open = records("incident.open")[0];
  EXPECT_EQ(open["level"], 2);
  EXPECT_EQ(open["severity"], "critical");
  EXPECT_EQ(open["cause"], "error rate");
  EXPECT_EQ(open["target"], "primary");
  EXPECT_NE(output.str().find("incident " + open["incident"].get<std::string>()), std::string::npos) << output.str();
  ASSERT_EQ(sent.to("oncall").size(), 1u);  // level 2's channel, at once ...
  EXPECT_EQ(sent.to("oncall")[0].action, "trigger");
  EXPECT_EQ(sent.to("oncall")[0].level, 2);
  EXPECT_TRUE(sent.to("team").empty());  // level 1 was never told, so it hears no resolve either
  // ... and the run succeeded, but what it escalated is not over because it did: the incident
  // it raised itself stays open (a later successful run, or a person, resolves it).
  EXPECT_TRUE(o.changes.empty());
  EXPECT_EQ(sent.to("oncall").size(), 1u);
  auto later = run(false);
  ASSERT_EQ(later.changes.size(), 1u);
  EXPECT_EQ(later.changes[0].what.inc.state, "resolved");
  EXPECT_EQ(sent.to("oncall").back().action, "resolve");
}

TEST_F(RunIncidents, EscalateWhileLoadingDeclaresAnAction) {
  load(R"lua(
    local action = escalate{ level = 2, summary = "degraded" }
    check(type(action) == "table" and action.action == "escalate" and action.level == 2, "not a descriptor")
    runbook "t" { step "s" { run = function() end } })lua");
  EXPECT_TRUE(records("incident.open").empty());
}

TEST_F(RunIncidents, EscalateRefusesUnknownFieldsAndPolicies) {
  load(R"lua(runbook "t" { step "s" { run = function() escalate{ levle = 2 } end } })lua");
  run(false);
  auto end = records("step.end").at(0);
  EXPECT_NE(end["error"]["message"].get<std::string>().find("did you mean 'level'"), std::string::npos) << end.dump();
  load(R"lua(runbook "t" { step "s" { run = function() escalate{ policy = "databse" } end } })lua");
  run(false);
  end = records("step.end").at(1);
  EXPECT_NE(end["error"]["message"].get<std::string>().find("escalation policy 'databse' is not defined"), std::string::npos)
      << end.dump();
}

}  // namespace
