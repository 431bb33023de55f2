// A watch's decision tree over samples in time: order, bands, sustained, hysteresis, investigate.
#include <gtest/gtest.h>

#include "engine/trigger/tree.hpp"

namespace rb::trigger {
namespace {

using namespace std::chrono_literals;

condition cond(const std::string& text) { return condition{text, expression::parse(text), {}}; }

action act(action::kind k) {
  action a;
  a.what = k;
  return a;
}

action investigate(milliseconds window, const std::string& unless, action then) {
  action a;
  a.what = action::kind::investigate;
  a.window = window;
  a.unless = cond(unless);
  a.then = std::make_shared<action>(std::move(then));
  return a;
}

trigger_def trig(const std::string& name, const std::string& when, action a) {
  trigger_def t;
  t.name = name;
  t.when = cond(when);
  t.act = std::move(a);
  return t;
}

/// What happened at one sample, as "trigger:decision[:action]" strings.
std::vector<std::string> at(tree& t, const sample& s, milliseconds elapsed) {
  std::vector<std::string> out;
  for (const auto& d : t.evaluate(s, elapsed)) {
    std::string line = d.trigger + ":" + std::string(kind_name(d.what));
    if (d.act) line += ":" + std::string(kind_name(d.act->what));
    out.push_back(line);
  }
  return out;
}

using lines = std::vector<std::string>;

TEST(TriggerTree, FirstMatchingTriggerActsAlone) {
  tree t({trig("first", "x > 1", act(action::kind::rollback)), trig("second", "x > 0", act(action::kind::abort))});
  EXPECT_EQ(at(t, {{"x", 5.0}}, 0ms), (lines{"first:fired:rollback"}));
}

TEST(TriggerTree, AFiredTriggerActsOnceWhileItsConditionHolds) {
  tree t({trig("slow", "ms > 500", act(action::kind::alert))});
  EXPECT_EQ(at(t, {{"ms", 600.0}}, 0s), (lines{"slow:fired:alert"}));
  EXPECT_EQ(at(t, {{"ms", 700.0}}, 30s), lines{});
  EXPECT_EQ(at(t, {{"ms", 700.0}}, 60s), lines{});
  EXPECT_EQ(at(t, {{"ms", 100.0}}, 90s), (lines{"slow:rearmed"}));
  EXPECT_EQ(at(t, {{"ms", 900.0}}, 120s), (lines{"slow:fired:alert"}));
}

TEST(TriggerTree, AFiredTriggerDoesNotHideTheNextBranch) {
  tree t({trig("slow", "ms > 500", act(action::kind::alert)), trig("very slow", "ms > 2000", act(action::kind::rollback))});
  EXPECT_EQ(at(t, {{"ms", 600.0}}, 0s), (lines{"slow:fired:alert"}));
  EXPECT_EQ(at(t, {{"ms", 2500.0}}, 30s), (lines{"very slow:fired:rollback"}));
}

TEST(TriggerTree, AnUnreadableMetricDoesNotReArm) {
  tree t({trig("slow", "ms > 500", act(action::kind::alert))});
  EXPECT_EQ(at(t, {{"ms", 600.0}}, 0s), (lines{"slow:fired:alert"}));
  EXPECT_EQ(at(t, {}, 30s), lines{});  // ms could not be read: unknown is not "better"
  EXPECT_EQ(at(t, {{"ms", 650.0}}, 60s), lines{});
}

TEST(TriggerTree, ClearWhenPreventsFlapping) {
  trigger_def degraded = trig("degraded", "success < 0.9", act(action::kind::escalate));
  degraded.clear_when = cond("success >= 0.95");
  tree t({degraded});
  EXPECT_EQ(at(t, {{"success", 0.85}}, 0s), (lines{"degraded:fired:escalate"}));
  // flapping around the threshold: not cleared (below 0.95), so no second notification
  for (int i = 1; i <= 10; ++i)
    EXPECT_EQ(at(t, {{"success", i % 2 ? 0.92 : 0.88}}, i * 30s), lines{}) << "sample " << i;
  EXPECT_EQ(at(t, {{"success", 0.97}}, 330s), (lines{"degraded:rearmed"}));
  EXPECT_EQ(at(t, {{"success", 0.80}}, 360s), (lines{"degraded:fired:escalate"}));
}

TEST(TriggerTree, SustainedIsNotMetByOneDip) {
  trigger_def t1 = trig("degraded", "success < 0.9", act(action::kind::escalate));
  t1.sustained = 10min;
  tree t({t1});
  EXPECT_EQ(at(t, {{"success", 0.8}}, 0min), lines{});
  EXPECT_EQ(at(t, {{"success", 0.8}}, 5min), lines{});
  EXPECT_EQ(at(t, {{"success", 0.95}}, 6min), lines{});  // one good sample resets the window
  EXPECT_EQ(at(t, {{"success", 0.8}}, 7min), lines{});
  EXPECT_EQ(at(t, {{"success", 0.8}}, 16min), lines{});
  EXPECT_EQ(at(t, {{"success", 0.8}}, 17min), (lines{"degraded:fired:escalate"}));
}

TEST(TriggerTree, AMissingSampleBreaksASustainedWindow) {
  trigger_def t1 = trig("degraded", "success < 0.9", act(action::kind::escalate));
  t1.sustained = 2min;
  tree t({t1});
  EXPECT_EQ(at(t, {{"success", 0.8}}, 0min), lines{});
  EXPECT_EQ(at(t, {}, 1min), lines{});  // the metric could not be read
  EXPECT_EQ(at(t, {{"success", 0.8}}, 2min), lines{});
  EXPECT_EQ(at(t, {{"success", 0.8}}, 4min), (lines{"degraded:fired:escalate"}));
}

TEST(TriggerTree, TimeBandsFollowSeed003) {
  trigger_def immediate = trig("constraint missing", "constraint_missing", act(action::kind::rollback));
  immediate.before = 5min;
  trigger_def conditional = trig("low success", "success < 0.5", act(action::kind::rollback));
  conditional.after = 5min;
  conditional.before = 30min;
  tree t({immediate, conditional});
  sample bad{{"constraint_missing", true}, {"success", 0.4}};
  // after 5 minutes a missing constraint is no longer an immediate trigger
  tree late = t;
  EXPECT_EQ(at(late, bad, 6min), (lines{"low success:fired:rollback"}));
  EXPECT_EQ(at(t, {{"constraint_missing", false}, {"success", 0.4}}, 1min), lines{});  // too early
  EXPECT_EQ(at(t, bad, 2min), (lines{"constraint missing:fired:rollback"}));
  tree after_band({conditional});
  EXPECT_EQ(at(after_band, bad, 30min), lines{});
}

TEST(TriggerTree, InvestigationClearedByRecoveryInsideItsWindow) {
  tree t({trig("low success", "success < 0.5",
               investigate(10min, "success >= 0.5", act(action::kind::rollback)))});
  EXPECT_EQ(at(t, {{"success", 0.3}}, 0min), (lines{"low success:investigation_started"}));
  EXPECT_EQ(at(t, {{"success", 0.3}}, 5min), lines{});
  EXPECT_EQ(at(t, {{"success", 0.7}}, 8min), (lines{"low success:investigation_cleared"}));
  EXPECT_EQ(at(t, {{"success", 0.7}}, 20min), lines{});  // no rollback after the window
}

TEST(TriggerTree, InvestigationActsWhenTheWindowPassesUnresolved) {
  tree t({trig("low success", "success < 0.5",
               investigate(10min, "success >= 0.5", act(action::kind::rollback)))});
  EXPECT_EQ(at(t, {{"success", 0.3}}, 0min), (lines{"low success:investigation_started"}));
  EXPECT_EQ(at(t, {{"success", 0.4}}, 9min), lines{});
  EXPECT_EQ(at(t, {}, 10min), (lines{"low success:investigation_expired:rollback"}));  // unreadable is not recovered
}

TEST(TriggerTree, InvestigationsNest) {
  // "investigate 10 minutes; if no quick fix, check locks for 15 more; then roll back"
  tree t({trig("slow", "ms > 500",
               investigate(10min, "ms <= 500", investigate(15min, "blocked == 0", act(action::kind::rollback))))});
  EXPECT_EQ(at(t, {{"ms", 900.0}, {"blocked", 3.0}}, 0min), (lines{"slow:investigation_started"}));
  EXPECT_EQ(at(t, {{"ms", 900.0}, {"blocked", 3.0}}, 10min),
            (lines{"slow:investigation_expired", "slow:investigation_started"}));
  EXPECT_EQ(at(t, {{"ms", 900.0}, {"blocked", 2.0}}, 20min), lines{});
  EXPECT_EQ(at(t, {{"ms", 900.0}, {"blocked", 2.0}}, 25min), (lines{"slow:investigation_expired:rollback"}));
}

TEST(TriggerTree, AClearedInnerInvestigationStandsDownWhileItsConditionHolds) {
  // the inner `unless` (no lock contention) clears it although ms stays high: no new
  // investigation at the same sample, nor at the next; it re-arms once ms is back
  tree t({trig("slow", "ms > 500",
               investigate(10min, "ms <= 500", investigate(15min, "blocked == 0", act(action::kind::rollback))))});
  EXPECT_EQ(at(t, {{"ms", 900.0}, {"blocked", 3.0}}, 0min), (lines{"slow:investigation_started"}));
  EXPECT_EQ(at(t, {{"ms", 900.0}, {"blocked", 3.0}}, 10min),
            (lines{"slow:investigation_expired", "slow:investigation_started"}));
  EXPECT_EQ(at(t, {{"ms", 900.0}, {"blocked", 0.0}}, 12min), (lines{"slow:investigation_cleared"}));
  EXPECT_EQ(at(t, {{"ms", 900.0}, {"blocked", 0.0}}, 13min), lines{});
  EXPECT_EQ(at(t, {{"ms", 400.0}, {"blocked", 0.0}}, 14min), (lines{"slow:rearmed"}));
  EXPECT_EQ(at(t, {{"ms", 900.0}, {"blocked", 0.0}}, 15min), (lines{"slow:investigation_started"}));
}

TEST(TriggerTree, OneActionPerSample) {
  tree t({trig("a", "x > 0", investigate(1min, "x < 0", act(action::kind::alert))),
          trig("b", "y > 0", act(action::kind::alert))});
  EXPECT_EQ(at(t, {{"x", 1.0}, {"y", 0.0}}, 0min), (lines{"a:investigation_started"}));
  // the investigation expires and acts; b holds too but waits for the next sample
  EXPECT_EQ(at(t, {{"x", 1.0}, {"y", 1.0}}, 1min), (lines{"a:investigation_expired:alert"}));
  EXPECT_EQ(at(t, {{"x", 1.0}, {"y", 1.0}}, 2min), (lines{"b:fired:alert"}));
}

TEST(TriggerTree, StateSurvivesARestartOfTheProcess) {
  auto make = [] {
    trigger_def sustained = trig("degraded", "success < 0.9", act(action::kind::escalate));
    sustained.sustained = 10min;
    return std::vector<trigger_def>{
        trig("slow", "ms > 500", investigate(10min, "ms <= 500", act(action::kind::rollback))),
        trig("fired once", "ms > 100", act(action::kind::alert)), sustained};
  };
  tree before(make());
  EXPECT_EQ(at(before, {{"ms", 900.0}, {"success", 0.8}}, 0min), (lines{"slow:investigation_started"}));
  EXPECT_EQ(at(before, {{"ms", 900.0}, {"success", 0.8}}, 1min), (lines{"fired once:fired:alert"}));
  json saved = before.state();

  tree after(make());
  after.restore(json::parse(saved.dump()));
  // no repeated alert, the investigation's window and the sustained window carried over
  EXPECT_EQ(at(after, {{"ms", 900.0}, {"success", 0.8}}, 10min), (lines{"slow:investigation_expired:rollback"}));
  tree again(make());
  again.restore(saved);
  EXPECT_EQ(at(again, {{"ms", 450.0}, {"success", 0.8}}, 9min), (lines{"slow:investigation_cleared"}));
  EXPECT_EQ(at(again, {{"ms", 150.0}, {"success", 0.8}}, 10min), (lines{"degraded:fired:escalate"}));
}

TEST(TriggerTree, ActionsDescribeThemselves) {
  action esc = act(action::kind::escalate);
  esc.args = {{"level", 2}};
  EXPECT_EQ(esc.describe(), "escalate{level=2}");
  EXPECT_EQ(investigate(10min, "success >= 0.5", act(action::kind::rollback)).describe(),
            "investigate 10m unless success >= 0.5, then rollback");
}

TEST(TriggerTree, AConditionFunctionThatThrowsNeverFires) {
  trigger_def t1;
  t1.name = "fn";
  t1.when = condition{"function (x.lua:3)", std::nullopt, [](const sample&) -> value { throw std::runtime_error("boom"); }};
  t1.act = act(action::kind::rollback);
  tree t({t1});
  EXPECT_EQ(at(t, {}, 0s), lines{});
}

}  // namespace
}  // namespace rb::trigger
