// What a person watching a watch sees: on a terminal a live block, a line per metric with its
// value and trend, the trigger closest to acting and the time left, redrawn in place; plain
// lines otherwise.
#include <gtest/gtest.h>

#include <sstream>

#include "engine/run/reporter.hpp"
#include "engine/trigger/watch.hpp"

namespace {

using namespace std::chrono_literals;
using rb::trigger::sample;

rb::trigger::watch_def two_metrics() {
  rb::trigger::watch_def w;
  w.name = "after deploy";
  w.every = 30s;
  w.lasting = 10min;
  w.metrics = {{"success_rate", "select 1", {}}, {"blocked", "select 0", {}}};
  rb::trigger::trigger_def t;
  t.name = "degraded";
  t.when.text = "success_rate < 0.9";
  t.when.expr = rb::trigger::expression::parse(t.when.text);
  t.sustained = 5min;
  w.triggers.push_back(std::move(t));
  return w;
}

TEST(ReporterWatch, OnATerminalEachMetricHasALiveLineRedrawnInPlace) {
  std::ostringstream out;
  rb::run::reporter r(out, {.tty = true, .color = false, .quiet = false});
  auto w = two_metrics();
  r.watch_sample(w, sample{{"success_rate", 0.95}, {"blocked", 0.0}}, 0ms, nlohmann::json::object());
  std::string first = out.str();
  EXPECT_NE(first.find("0ms of 10m, 10m left, 1 sample"), std::string::npos) << first;
  EXPECT_NE(first.find("success_rate"), std::string::npos) << first;
  EXPECT_NE(first.find("(degraded)"), std::string::npos) << first;  // the trigger that reads it
  EXPECT_EQ(first.find("\033[3A"), std::string::npos) << first;     // nothing to redraw yet

  out.str("");
  nlohmann::json state = {{"degraded", {{"armed", true}, {"holding_since_ms", 60'000}}}};
  r.watch_sample(w, sample{{"success_rate", 0.85}}, 3min, state);
  std::string second = out.str();
  EXPECT_EQ(second.rfind("\033[3A", 0), 0u) << second;  // back up over the block: header + 2 metrics
  EXPECT_NE(second.find("0.85 ↓"), std::string::npos) << second;
  EXPECT_NE(second.find("unread"), std::string::npos) << second;  // blocked was not read this time
  EXPECT_NE(second.find("3m of 10m, 7m left, 2 samples · closest: 'degraded' holding 2m of 5m"), std::string::npos) << second;

  // A message printed in between leaves the block above it: the next sample draws a new one.
  out.str("");
  r.message("decision: alert sent");
  r.watch_sample(w, sample{{"success_rate", 0.9}, {"blocked", 0.0}}, 3min + 30s, state);
  EXPECT_EQ(out.str().find("\033[3A"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("0.9 ↑"), std::string::npos) << out.str();
}

TEST(ReporterWatch, WithoutATerminalEachSampleIsOnePlainLine) {
  std::ostringstream out;
  rb::run::reporter r(out, {.tty = false, .color = false, .quiet = false});
  auto w = two_metrics();
  r.watch_sample(w, sample{{"success_rate", 0.95}, {"blocked", 2.0}}, 30s, nlohmann::json::object());
  EXPECT_EQ(out.str(), "  30.0s: success_rate=0.95 blocked=2\n");
  // A metric read as SQL NULL is not a failed read.
  out.str("");
  r.watch_sample(w, sample{{"success_rate", std::monostate{}}}, 60s, nlohmann::json::object());
  EXPECT_EQ(out.str(), "  1m: success_rate=null blocked=unread\n");
}

}  // namespace
