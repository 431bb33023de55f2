// Watches the whole way: a Lua runbook, the loader, the run session and executor, a real
// PostgreSQL whose metrics the test changes at fake times, real alert deliveries to a webhook
// receiver on 127.0.0.1, and the audit log. Time is a script_clock: the watch's waits advance
// it at once, and what the test scheduled for a moment happens before the sample taken then.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <mutex>
#include <sstream>

#include "bindings/config.hpp"
#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/audit/log.hpp"
#include "engine/db/connection.hpp"
#include "engine/run/session.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/receiver.hpp"
#include "tests/support/runbook_test.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using std::chrono::milliseconds;

/// Fake time with a schedule: sleep_for() moves time on at once, and runs each callback whose
/// moment it passes (in order, with the clock at that moment) before it returns.
class script_clock final : public rb::clock {
 public:
  std::chrono::steady_clock::time_point now() const override {
    return std::chrono::steady_clock::time_point{} + 1000h + milliseconds(m_offset.load());
  }
  std::chrono::system_clock::time_point wall_now() const override { return m_wall + milliseconds(m_offset.load()); }
  void sleep_for(milliseconds d) override {
    long long target = m_offset.load() + d.count();
    for (;;) {
      std::function<void()> fn;
      {
        std::lock_guard<std::mutex> lock(m_mutex);
        auto it = m_at.begin();
        if (it == m_at.end() || it->first > target) break;
        m_offset.store(std::max(m_offset.load(), it->first));
        fn = std::move(it->second);
        m_at.erase(it);
      }
      fn();
    }
    m_offset.store(std::max(m_offset.load(), target));
  }
  using rb::clock::sleep_for;
  /// Runs `fn` when time reaches `t` (since this clock was made; the watch starts at 0).
  void at(milliseconds t, std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_at.emplace(t.count(), std::move(fn));
  }

 private:
  std::atomic<long long> m_offset{0};
  std::chrono::system_clock::time_point m_wall =
      std::chrono::time_point_cast<milliseconds>(std::chrono::system_clock::now());
  std::mutex m_mutex;
  std::multimap<long long, std::function<void()>> m_at;
};

class WatchPhase : public ::testing::Test {
 protected:
  rb::testing::temp_dir dir{"rb-watch-phase"};
  std::string dsn = rb::testing::fresh_database("watch_phase");
  mutable rb::db::connection admin{{dsn, "test", "test"}};
  rb::testing::receiver hook{rb::testing::receiver::kind::http, dir.path()};
  script_clock clk;
  std::ostringstream output;
  rb::run::reporter out{output, rb::run::reporter_options{}};
  rb::testing::no_confirm confirm;
  std::unique_ptr<rb::lua::sandbox> sb;
  rb::run::runbook_def book;

  void SetUp() override {
    admin.exec("create table metric (name text primary key, v float8)");
    admin.exec("insert into metric values ('x', 0), ('rate', 1), ('blocked', 0)");
    admin.exec("create table work (what text)");
    dir.write("runbook.lua", R"lua(return {
      channels = { hook = { type = "webhook", url = ")lua" + hook.url() + R"lua(" }, ops = { type = "log" } },
      default_channels = { "ops" },
      escalation = { database = { levels = { { after = "0m", notify = { "ops" } }, { after = "1h", notify = { "ops" } } } } },
      default_escalation = "database",
    })lua");
  }

  /// Sets metric `name` to `v` now (from the test's own session).
  void set(const std::string& name, double v) {
    admin.exec("update metric set v = $1 where name = $2", {std::to_string(v), name});
  }
  /// Sets metric `name` to `v` when the watch has run `t`.
  void at(milliseconds t, const std::string& name, double v) {
    clk.at(t, [this, name, v] { set(name, v); });
  }

  /// A runbook "t" with one step (inserts 'step' into work; its rollback deletes it) and the
  /// watch `watch` after it, run through a session as `runbook run t --dsn DSN` would.
  rb::run::run_outcome run(const std::string& watch, bool with_step = true) {
    std::string source = "runbook \"t\" {\n";
    if (with_step)
      source += R"lua(  step "work" {
    run = function(ctx) ctx.db:exec("insert into work values ('step')") end,
    rollback = function(ctx) ctx.db:exec("delete from work where what = 'step'") end,
  },
)lua";
    source += watch + "\n}\n";
    auto file = dir.write("runbooks/t.lua", source);
    book = {};
    rb::lua::sandbox_options o;
    o.module_path.push_back(rb::lua::stdlib_dir());
    sb = std::make_unique<rb::lua::sandbox>(o);
    rb::lua::open_all(*sb);
    book = rb::lua::load_runbook(*sb, file, "t");
    rb::run::config cfg = rb::lua::load_config(*sb, dir.path() / "runbook.lua");
    rb::run::session_options so;
    so.audit_file = dir.path() / "audit.jsonl";
    so.database.dsn = dsn;
    rb::run::session s(book, std::move(cfg), std::move(so), out, confirm, clk);
    rb::run::run_options opts;
    opts.yes = true;
    return s.run(opts);
  }

  std::vector<json> records(const std::string& event) const {
    std::vector<json> r;
    rb::audit::for_each_record(dir.path() / "audit.jsonl", [&](const json& rec) {
      if (rec.value("event", "") == event) r.push_back(rec);
    });
    return r;
  }
  /// decision records that acted or changed a trigger, as "elapsed trigger decision".
  std::vector<std::string> decisions() const {
    std::vector<std::string> out;
    for (const auto& d : records("decision"))
      out.push_back(std::to_string(d["elapsed_ms"].get<long long>() / 1000) + "s " + d.value("trigger", "") + " " +
                    d.value("decision", ""));
    return out;
  }
  long long work(const std::string& what) const {
    return std::stoll(admin.exec("select count(*) from work where what = $1", {what}).rows.at(0).at(0).text);
  }
  std::vector<std::string> rollbacks() const {
    std::vector<std::string> out;
    for (const auto& r : records("rollback.end")) out.push_back(r.value("step", "") + " " + r.value("status", ""));
    return out;
  }
};

// --- when, bands, sustained -------------------------------------------------------------------

TEST_F(WatchPhase, AnExpressionThatHoldsRollsBackTheRunAndAuditsWhy) {
  at(90s, "x", 20);
  auto o = run(R"lua(watch "after" {
    every = "30s", lasting = "10m",
    metrics = { x = [[select v from metric where name = 'x']] },
    trigger "high" { when = "x > 10", action = "rollback" },
  })lua");
  EXPECT_EQ(o.status, "rolled_back") << output.str();
  EXPECT_TRUE(o.rolled_back);
  EXPECT_EQ(work("step"), 0) << "the step's rollback handler ran";
  EXPECT_EQ(rollbacks(), std::vector<std::string>{"work succeeded"});
  EXPECT_EQ(decisions(), std::vector<std::string>{"90s high fired"});
  json d = records("decision").at(0);
  EXPECT_EQ(d["condition"], "x > 10");
  EXPECT_EQ(d["values"]["x"], 20.0);
  EXPECT_EQ(d["action"], "rollback");
  EXPECT_EQ(d["ends"], "rollback");
  EXPECT_EQ(records("watch.end").at(0)["end"], "rollback");
  EXPECT_EQ(records("watch.end").at(0)["trigger"], "high");
  // The run's end names the watch and the trigger, and its incident opened (policy "database").
  json end = records("run.end").at(0);
  EXPECT_EQ(end["status"], "rolled_back");
  EXPECT_NE(end.dump().find("trigger 'high'"), std::string::npos) << end.dump();
  EXPECT_EQ(records("incident.open").size(), 1u);
  // Nothing sampled after the decision.
  EXPECT_EQ(records("watch.end").at(0)["samples"], 4);
}

TEST_F(WatchPhase, AFunctionConditionSeesTheSampleAndTheRun) {
  at(60s, "x", 3);
  auto o = run(R"lua(watch "after" {
    every = "30s", lasting = "5m",
    metrics = { x = [[select v from metric where name = 'x']], doubled = function(ctx) return 2 * ctx.db:scalar("select v from metric where name = 'x'") end },
    trigger "odd" { when = function(m, ctx) return m.doubled == 6 and m.x == 3 and ctx.runbook == "t" end, action = "abort" },
  })lua");
  EXPECT_EQ(o.status, "failed") << output.str();
  EXPECT_EQ(decisions(), std::vector<std::string>{"60s odd fired"});
  EXPECT_NE(records("decision").at(0)["condition"].get<std::string>().find("t.lua:9)"), std::string::npos)
      << records("decision").at(0).dump();
  EXPECT_EQ(records("decision").at(0)["values"]["doubled"], 6.0);
}

TEST_F(WatchPhase, TriggersActOnlyInsideTheirTimeBand) {
  // Above 10 from 6m to 8m (between the bands: nothing), again from 12m (the late band).
  at(6min, "x", 20);
  at(8min, "x", 0);
  at(12min, "x", 20);
  auto o = run(R"lua(watch "after" {
    every = "30s", lasting = "30m",
    metrics = { x = [[select v from metric where name = 'x']] },
    trigger "early" { before = "5m", when = "x > 10", action = "abort" },
    trigger "late" { after = "10m", when = "x > 10", action = "rollback" },
  })lua");
  EXPECT_EQ(o.status, "rolled_back") << output.str();
  EXPECT_EQ(decisions(), std::vector<std::string>{"720s late fired"});
}

TEST_F(WatchPhase, TheEarlyBandActsBeforeItCloses) {
  at(2min, "x", 20);
  auto o = run(R"lua(watch "after" {
    every = "30s", lasting = "30m",
    metrics = { x = [[select v from metric where name = 'x']] },
    trigger "early" { before = "5m", when = "x > 10", action = "abort" },
    trigger "late" { after = "10m", when = "x > 10", action = "rollback" },
  })lua");
  EXPECT_EQ(o.status, "failed") << output.str();
  EXPECT_FALSE(o.rolled_back);
  EXPECT_EQ(work("step"), 1) << "abort leaves the step's work in place";
  EXPECT_TRUE(records("rollback.start").empty());
  EXPECT_EQ(decisions(), std::vector<std::string>{"120s early fired"});
}

TEST_F(WatchPhase, SustainedIsNotMetWhenOneSampleDips) {
  // High from 1m; one sample (4m) low; high again from 4m30: five minutes counted from 4m30.
  at(1min, "x", 20);
  at(4min, "x", 0);
  at(4min + 30s, "x", 20);
  auto o = run(R"lua(watch "after" {
    every = "30s", lasting = "30m",
    metrics = { x = [[select v from metric where name = 'x']] },
    trigger "long high" { when = "x > 10", sustained = "5m", action = "rollback" },
  })lua");
  EXPECT_EQ(o.status, "rolled_back") << output.str();
  EXPECT_EQ(decisions(), std::vector<std::string>{"570s long high fired"});
}

// --- actions ------------------------------------------------------------------------------------

TEST_F(WatchPhase, ClearWhenKeepsAFlappingMetricToOneAlert) {
  // Above 100 at 1m, then flapping between 120 and 90 (inside the band) every sample until 10m:
  // one delivery. Below 50 at 10m re-arms it; above 100 again at 12m: the second delivery.
  at(1min, "x", 120);
  for (int i = 0; i < 17; ++i) at(1min + 30s * (i + 1), "x", i % 2 == 0 ? 90 : 120);
  at(10min, "x", 40);
  at(12min, "x", 130);
  auto o = run(R"lua(watch "after" {
    every = "30s", lasting = "15m",
    metrics = { x = [[select v from metric where name = 'x']] },
    trigger "slow" { when = "x > 100", clear_when = "x < 50",
                     action = alert{ severity = "warning", summary = "x is high", channel = "hook" } },
  })lua");
  EXPECT_EQ(o.status, "succeeded") << output.str();
  EXPECT_EQ(decisions(), (std::vector<std::string>{"60s slow fired", "600s slow rearmed", "720s slow fired"}));
  ASSERT_TRUE(hook.wait_for(2));
  auto got = hook.requests();
  ASSERT_EQ(got.size(), 2u) << "one alert per firing, not one per sample above 100";
  json body = json::parse(got[0]["body"].get<std::string>());
  EXPECT_NE(body.dump().find("x is high"), std::string::npos) << body.dump();
  EXPECT_NE(body.dump().find("x > 100 held"), std::string::npos) << body.dump();
  EXPECT_EQ(records("alert.sent").size(), 2u);
}

TEST_F(WatchPhase, WithoutClearWhenTheSameFlappingAlertsEveryTimeItRises) {
  // The control for the test above: the same metric, no hysteresis, one alert per rise.
  at(1min, "x", 120);
  for (int i = 0; i < 4; ++i) at(1min + 30s * (i + 1), "x", i % 2 == 0 ? 90 : 120);
  auto o = run(R"lua(watch "after" {
    every = "30s", lasting = "5m",
    metrics = { x = [[select v from metric where name = 'x']] },
    trigger "slow" { when = "x > 100", action = alert{ severity = "warning", summary = "x is high", channel = "hook" } },
  })lua");
  EXPECT_EQ(o.status, "succeeded") << output.str();
  ASSERT_TRUE(hook.wait_for(3));
  EXPECT_EQ(hook.requests().size(), 3u);
}

TEST_F(WatchPhase, AnInvestigationClearedByRecoveryTakesNoAction) {
  at(6min, "rate", 0.3);
  at(10min, "rate", 0.8);  // recovered 4 minutes into the 10-minute window
  auto o = run(R"lua(watch "after" {
    every = "1m", lasting = "30m",
    metrics = { rate = [[select v from metric where name = 'rate']] },
    trigger "low success" { after = "5m", when = "rate < 0.5",
      action = investigate{ window = "10m", unless = "rate >= 0.5", action = "rollback" } },
  })lua");
  EXPECT_EQ(o.status, "succeeded") << output.str();
  EXPECT_EQ(work("step"), 1);
  EXPECT_EQ(decisions(), (std::vector<std::string>{"360s low success investigation_started",
                                                   "600s low success investigation_cleared"}));
  EXPECT_EQ(records("decision").at(1)["condition"], "rate >= 0.5");
}

TEST_F(WatchPhase, AnInvestigationThatDoesNotRecoverActsWhenItsWindowEnds) {
  at(6min, "rate", 0.3);
  auto o = run(R"lua(watch "after" {
    every = "1m", lasting = "30m",
    metrics = { rate = [[select v from metric where name = 'rate']] },
    trigger "low success" { after = "5m", when = "rate < 0.5",
      action = investigate{ window = "10m", unless = "rate >= 0.5", action = "rollback" } },
  })lua");
  EXPECT_EQ(o.status, "rolled_back") << output.str();
  EXPECT_EQ(work("step"), 0);
  EXPECT_EQ(decisions(), (std::vector<std::string>{"360s low success investigation_started",
                                                   "960s low success investigation_expired"}));
  EXPECT_EQ(records("decision").at(1)["action"], "rollback");
}

constexpr const char* k_nested = R"lua(watch "after" {
    every = "1m", lasting = "1h",
    metrics = { rate = [[select v from metric where name = 'rate']], blocked = [[select v from metric where name = 'blocked']] },
    trigger "low success" { when = "rate < 0.5",
      action = investigate{ window = "5m", unless = "rate >= 0.5",
                            action = investigate{ window = "5m", unless = "blocked == 0", action = "rollback" } } },
  })lua";

TEST_F(WatchPhase, ANestedInvestigationClearsInItsOwnWindow) {
  at(2min, "rate", 0.3);
  at(2min, "blocked", 4);
  at(9min, "blocked", 0);  // the inner window began at 7m
  auto o = run(k_nested);
  EXPECT_EQ(o.status, "succeeded") << output.str();
  EXPECT_EQ(decisions(), (std::vector<std::string>{"120s low success investigation_started",
                                                   "420s low success investigation_expired",
                                                   "420s low success investigation_started",
                                                   "540s low success investigation_cleared"}))
      << "cleared, it stands down while success stays low: no new investigation";
}

TEST_F(WatchPhase, ANestedInvestigationThatNeverClearsRollsBackAfterBothWindows) {
  at(2min, "rate", 0.3);
  at(2min, "blocked", 4);
  auto o = run(k_nested);
  EXPECT_EQ(o.status, "rolled_back") << output.str();
  EXPECT_EQ(decisions(), (std::vector<std::string>{"120s low success investigation_started",
                                                   "420s low success investigation_expired",
                                                   "420s low success investigation_started",
                                                   "720s low success investigation_expired"}));
}

TEST_F(WatchPhase, EscalateOpensAnIncidentAndTheWatchGoesOn) {
  at(1min, "x", 20);
  auto o = run(R"lua(watch "after" {
    every = "30s", lasting = "5m",
    metrics = { x = [[select v from metric where name = 'x']] },
    trigger "degraded" { when = "x > 10", action = escalate{ level = 2, summary = "x degraded" } },
  })lua");
  EXPECT_EQ(o.status, "succeeded") << output.str();
  EXPECT_EQ(decisions(), std::vector<std::string>{"60s degraded fired"});
  auto opened = records("incident.open");
  ASSERT_EQ(opened.size(), 1u);
  EXPECT_EQ(opened[0]["level"], 2);
  EXPECT_EQ(opened[0]["summary"], "x degraded");
  EXPECT_EQ(records("watch.end").at(0)["end"], "completed");
  EXPECT_EQ(records("watch.end").at(0)["samples"], 10);
}

TEST_F(WatchPhase, AFunctionActionRunsWithTheSampleAndTheRunsDatabase) {
  at(1min, "x", 20);
  auto o = run(R"lua(watch "after" {
    every = "30s", lasting = "3m",
    metrics = { x = [[select v from metric where name = 'x']] },
    trigger "note" { when = "x > 10", action = function(ctx, m) ctx.db:exec("insert into work values ($1)", "saw " .. m.x) end },
  })lua");
  EXPECT_EQ(o.status, "succeeded") << output.str();
  EXPECT_EQ(work("saw 20"), 1) << "once, although x stayed above 10";
  EXPECT_EQ(records("decision").at(0)["action"], "function");
}

TEST_F(WatchPhase, WhenTwoTriggersMatchTheFirstActs) {
  at(1min, "x", 20);
  auto o = run(R"lua(watch "after" {
    every = "30s", lasting = "5m",
    metrics = { x = [[select v from metric where name = 'x']] },
    trigger "first" { when = "x > 10", action = "abort" },
    trigger "second" { when = "x > 5", action = "rollback" },
  })lua");
  EXPECT_EQ(o.status, "failed") << output.str();
  EXPECT_TRUE(records("rollback.start").empty());
  EXPECT_EQ(decisions(), std::vector<std::string>{"60s first fired"});
}

// --- metrics that cannot be read ----------------------------------------------------------------

TEST_F(WatchPhase, AnUnreadableMetricIsNilAuditedAndEscalatesOnceAfterThreeSamples) {
  admin.exec("create table gone (id int)");
  admin.exec("insert into gone values (1)");
  clk.at(2min, [this] { admin.exec("drop table gone"); });
  auto o = run(R"lua(watch "after" {
    every = "30s", lasting = "6m",
    metrics = { rows = [[select count(*) from gone]], x = [[select v from metric where name = 'x']] },
    trigger "empty" { when = "rows < 1", action = "rollback" },
  })lua");
  // "rows < 1" over nil is not true: losing the table does not roll the run back.
  EXPECT_EQ(o.status, "succeeded") << output.str();
  EXPECT_EQ(work("step"), 1);
  std::vector<json> failed;
  for (const auto& s : records("sample"))
    if (s.contains("errors")) failed.push_back(s);
  ASSERT_EQ(failed.size(), 8u) << "every sample from 2m to 5m30, each in full";
  EXPECT_TRUE(failed[0]["values"]["rows"].is_null());
  EXPECT_EQ(failed[0]["values"]["x"], 0.0) << "the other metric still read";
  EXPECT_NE(failed[0]["errors"]["rows"].get<std::string>().find("gone"), std::string::npos) << failed[0].dump();
  EXPECT_EQ(failed[0]["elapsed_ms"], 120000);
  EXPECT_EQ(decisions(), std::vector<std::string>{"180s  metrics_unavailable"});
  auto opened = records("incident.open");
  ASSERT_EQ(opened.size(), 1u) << "one escalation, not one per failed sample";
  EXPECT_NE(opened[0]["summary"].get<std::string>().find("metrics unavailable: rows"), std::string::npos)
      << opened[0].dump();
}

TEST_F(WatchPhase, AFunctionMetricThatFailsIsNilAndAuditedAndTwoFailuresDoNotEscalate) {
  at(1min, "x", -1);
  auto o = run(R"lua(watch "after" {
    every = "30s", lasting = "2m",
    metrics = { checked = function(ctx)
      local v = ctx.db:scalar("select v from metric where name = 'x'")
      if v < 0 then error("x went negative") end
      return v
    end },
    trigger "negative" { when = "checked < 0", action = "rollback" },
  })lua");
  EXPECT_EQ(o.status, "succeeded") << output.str();
  std::vector<json> failed;
  for (const auto& s : records("sample"))
    if (s.contains("errors")) failed.push_back(s);
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_TRUE(failed[0]["values"]["checked"].is_null());
  EXPECT_NE(failed[0]["errors"]["checked"].get<std::string>().find("x went negative"), std::string::npos)
      << failed[0].dump();
  EXPECT_EQ(records("watch.error").size(), 2u);
  EXPECT_TRUE(records("decision").empty());
  EXPECT_TRUE(records("incident.open").empty()) << "two failed samples in a row are not three";
}

}  // namespace
