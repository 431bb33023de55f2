// The watch loop on a fake clock: sampling rate, journaling, actions, summaries, resume.
#include <gtest/gtest.h>

#include <ctime>

#include "engine/trigger/watch.hpp"

namespace rb::trigger {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

condition cond(const std::string& text) { return condition{text, expression::parse(text), {}}; }

/// A run as the watch sees it: a fake clock, metrics computed from the time, records kept.
class test_host : public watch_host {
 public:
  std::function<sample(milliseconds)> metrics;  // elapsed -> values
  std::vector<json> records;
  std::vector<std::string> actions;             // "escalate: reason", "alert: reason", "call"
  steady::time_point t{steady::time_point() + 1000h};
  steady::time_point start = t;
  long long wall_start_ms = 1'780'000'000'000;  // the wall clock at `start`
  std::optional<milliseconds> stop_at;
  int reads = 0;

  sample read(const watch_def&, json& errors) override {
    ++reads;
    sample s = metrics(elapsed());
    for (auto it = s.begin(); it != s.end();) {
      if (std::holds_alternative<std::monostate>(it->second)) {
        errors[it->first] = "relation \"gone\" does not exist";
        it = s.erase(it);
      } else {
        ++it;
      }
    }
    return s;
  }
  void record(std::string_view event, json fields, bool) override {
    fields["event"] = std::string(event);
    fields["ts"] = stamp(wall_start_ms + elapsed().count());
    records.push_back(std::move(fields));
  }
  void escalate(const json&, const std::string& reason) override { actions.push_back("escalate: " + reason); }
  void alert(const json&, const std::string& reason) override { actions.push_back("alert: " + reason); }
  void call(const action&, const sample&) override { actions.push_back("call"); }
  bool stopping() override { return stop_at && elapsed() >= *stop_at; }
  steady::time_point now() override { return t; }
  void wait_until(steady::time_point until) override {
    if (until > t) t = until;
  }

  milliseconds elapsed() const { return std::chrono::duration_cast<milliseconds>(t - start); }
  static std::string stamp(long long ms) {
    std::time_t secs = ms / 1000;
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    return buf;
  }
  std::vector<json> of(const std::string& event) const {
    std::vector<json> out;
    for (const auto& r : records)
      if (r["event"] == event) out.push_back(r);
    return out;
  }
};

watch_def seed003() {
  watch_def w;
  w.name = "after deploy";
  w.every = 30s;
  w.lasting = 24h;
  for (const char* m : {"success_rate", "response_ms", "blocked", "constraint_missing"}) w.metrics.push_back({m, "select 1", {}});
  auto rollback = [] { action a; a.what = action::kind::rollback; return a; };
  trigger_def immediate{"constraint missing", 0, cond("constraint_missing"), std::nullopt, 5min, std::nullopt, std::nullopt, rollback()};
  action inv;
  inv.what = action::kind::investigate;
  inv.window = 10min;
  inv.unless = cond("success_rate >= 0.5");
  inv.then = std::make_shared<action>(rollback());
  trigger_def low{"low success", 0, cond("success_rate < 0.5"), 5min, 30min, std::nullopt, std::nullopt, inv};
  action esc;
  esc.what = action::kind::escalate;
  esc.args = {{"level", 2}};
  trigger_def degraded{"degraded", 0, cond("success_rate < 0.9"), 30min, std::nullopt, 30min, cond("success_rate >= 0.95"), esc};
  w.triggers = {immediate, low, degraded};
  return w;
}

sample healthy() { return {{"success_rate", 0.99}, {"response_ms", 120.0}, {"blocked", 0.0}, {"constraint_missing", false}}; }

TEST(WatchRunner, AHealthyWatchRunsItsTimeAndSummarisesQuietSamples) {
  test_host host;
  host.metrics = [](milliseconds) { return healthy(); };
  watch_def w = seed003();
  watch_runner runner(w, host);
  watch_result r = runner.run();
  EXPECT_EQ(r.end, watch_end::completed);
  EXPECT_EQ(host.elapsed(), 24h);
  EXPECT_EQ(r.samples, 24 * 120);  // every 30 s for 24 h
  EXPECT_TRUE(host.actions.empty());
  // 2,880 samples fold into summaries of 20: the log stays small
  EXPECT_LT(host.records.size(), 200u);
  EXPECT_EQ(host.of("watch.end").at(0)["end"], "completed");
  long long counted = 0;
  for (const auto& s : host.of("sample.summary")) counted += s["count"].get<long long>();
  for (const auto& s : host.of("sample")) (void)s, ++counted;
  EXPECT_EQ(counted, r.samples);
}

TEST(WatchRunner, ImmediateTriggerRollsBackAndJournalsTheDecisionFirst) {
  test_host host;
  host.metrics = [](milliseconds e) {
    sample s = healthy();
    if (e >= 2min) s["constraint_missing"] = true;
    return s;
  };
  watch_def w = seed003();
  watch_result r = watch_runner(w, host).run();
  EXPECT_EQ(r.end, watch_end::rollback);
  EXPECT_EQ(r.trigger, "constraint missing");
  EXPECT_EQ(host.elapsed(), 2min);
  auto d = host.of("decision");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0]["condition"], "constraint_missing");
  EXPECT_EQ(d[0]["action"], "rollback");
  EXPECT_EQ(d[0]["values"]["constraint_missing"], true);
  EXPECT_EQ(d[0]["ends"], "rollback");
}

TEST(WatchRunner, ConditionalBandInvestigatesThenRollsBack) {
  test_host host;
  host.metrics = [](milliseconds e) {
    sample s = healthy();
    if (e >= 6min) s["success_rate"] = 0.4;
    return s;
  };
  watch_def w = seed003();
  watch_result r = watch_runner(w, host).run();
  EXPECT_EQ(r.end, watch_end::rollback);
  EXPECT_EQ(r.trigger, "low success");
  EXPECT_EQ(host.elapsed(), 16min);  // 10 minutes of investigation from minute 6
  auto d = host.of("decision");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0]["decision"], "investigation_started");
  EXPECT_EQ(d[1]["decision"], "investigation_expired");
  EXPECT_EQ(d[1]["action"], "rollback");
}

TEST(WatchRunner, PerformanceBandEscalatesOnceForASustainedDrop) {
  test_host host;
  host.metrics = [](milliseconds e) {
    sample s = healthy();
    bool odd = (e / 30s) % 2;
    if (e >= 40min && e < 100min) s["success_rate"] = odd ? 0.85 : 0.88;  // under 0.9 for an hour
    if (e >= 100min && e < 3h) s["success_rate"] = odd ? 0.85 : 0.92;    // then flapping below 0.95
    return s;
  };
  watch_def w = seed003();
  w.lasting = 4h;
  watch_result r = watch_runner(w, host).run();
  EXPECT_EQ(r.end, watch_end::completed);
  ASSERT_EQ(host.actions.size(), 1u) << "one escalation, not one per sample";
  EXPECT_NE(host.actions[0].find("trigger 'degraded'"), std::string::npos);
  auto d = host.of("decision");
  ASSERT_GE(d.size(), 1u);
  EXPECT_EQ(d[0]["elapsed_ms"].get<long long>(), std::chrono::milliseconds(70min).count());  // 40m + 30m sustained
}

TEST(WatchRunner, ThreeFailedSamplesEscalateOnce) {
  test_host host;
  host.metrics = [](milliseconds e) {
    sample s = healthy();
    if (e >= 1min && e < 10min) s["blocked"] = value{};  // the query fails
    return s;
  };
  watch_def w = seed003();
  w.lasting = 20min;
  watch_result r = watch_runner(w, host).run();
  EXPECT_EQ(r.end, watch_end::completed);
  ASSERT_EQ(host.actions.size(), 1u);
  EXPECT_NE(host.actions[0].find("metrics unavailable: blocked"), std::string::npos);
  // every failed sample is recorded in full, with its error
  int with_errors = 0;
  for (const auto& s : host.of("sample")) with_errors += s.contains("errors");
  EXPECT_EQ(with_errors, 18);
}

TEST(WatchRunner, StopsWhenTheRunIsCancelled) {
  test_host host;
  host.metrics = [](milliseconds) { return healthy(); };
  host.stop_at = 5min;
  watch_def w = seed003();
  watch_result r = watch_runner(w, host).run();
  EXPECT_EQ(r.end, watch_end::cancelled);
  EXPECT_EQ(host.elapsed(), 5min);
}

TEST(WatchRunner, ResumeContinuesTheRemainingTimeWithoutRepeatingAnAction) {
  // first process: an alert fires at minute 2, an investigation starts at minute 6, then a crash at minute 9
  watch_def w = seed003();
  w.lasting = 1h;
  action alert;
  alert.what = action::kind::alert;
  w.triggers.insert(w.triggers.begin() + 1, trigger_def{"slow", 0, cond("response_ms > 500"), std::nullopt, std::nullopt,
                                                         std::nullopt, std::nullopt, alert});
  auto metrics = [](milliseconds e) {
    sample s = healthy();
    if (e >= 2min) s["response_ms"] = 800.0;
    if (e >= 6min && e < 20min) s["success_rate"] = 0.3;
    return s;
  };
  test_host first;
  first.metrics = metrics;
  first.stop_at = 9min;  // stands in for kill -9: the records so far are what the journal holds
  watch_runner(w, first).run();
  std::vector<json> journal = first.records;
  journal.pop_back();  // a killed process writes no watch.end
  ASSERT_EQ(first.actions.size(), 1u);

  // second process, 1 minute later (minute 10): restores the investigation begun at minute 6
  auto cp = checkpoint_from(journal, w.name, test_host::stamp(first.wall_start_ms + std::chrono::milliseconds(10min).count()));
  ASSERT_TRUE(cp);
  EXPECT_EQ(cp->elapsed, 10min);
  test_host second;
  second.metrics = [&](milliseconds e) { return metrics(e + 10min); };
  watch_result r = watch_runner(w, second).run(cp);
  EXPECT_TRUE(second.actions.empty()) << "the alert of minute 2 is not sent again";
  EXPECT_EQ(r.end, watch_end::rollback) << "the investigation of minute 6 expired at minute 16";
  EXPECT_EQ(second.elapsed(), 6min);
  EXPECT_EQ(second.of("watch.resume").size(), 1u);
}

TEST(WatchRunner, AJournaledEndingIsNotActedAgain) {
  test_host host;
  host.metrics = [](milliseconds e) {
    sample s = healthy();
    if (e >= 1min) s["constraint_missing"] = true;
    return s;
  };
  watch_def w = seed003();
  watch_runner(w, host).run();
  std::vector<json> journal = host.records;
  journal.pop_back();  // crashed after journaling the decision, before watch.end
  auto cp = checkpoint_from(journal, w.name, test_host::stamp(host.wall_start_ms + 120'000));
  ASSERT_TRUE(cp && cp->ended);
  test_host again;
  again.metrics = host.metrics;
  watch_result r = watch_runner(w, again).run(cp);
  EXPECT_EQ(r.end, watch_end::rollback);
  EXPECT_EQ(again.reads, 0);
}

TEST(WatchRunner, ValidationNamesUnknownMetricsAndBadBands) {
  watch_def w = seed003();
  w.triggers[1].when = cond("sucess_rate < 0.5");
  w.triggers[2].after = 40min;
  w.triggers[2].before = 30min;
  auto problems = validate(w);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_NE(problems[0].find("trigger 'low success': 'sucess_rate < 0.5' reads 'sucess_rate'"), std::string::npos);
  EXPECT_NE(problems[1].find("after (40m) must come before before (30m)"), std::string::npos);
  EXPECT_TRUE(validate(seed003()).empty());
}

}  // namespace
}  // namespace rb::trigger
