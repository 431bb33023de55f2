// Durations as runbooks write them: parsing "250ms", "30s", "5m", "1h30m", "2d", and formatting.
#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/error.hpp"
#include "engine/util/duration.hpp"

namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

std::chrono::milliseconds parsed(const std::string& text) { return rb::parse_duration(text); }

bool parses(const std::string& text) {
  std::chrono::milliseconds out{};
  return rb::try_parse_duration(text, out);
}

TEST(Duration, ParsesEachUnit) {
  EXPECT_EQ(parsed("250ms"), 250ms);
  EXPECT_EQ(parsed("30s"), 30s);
  EXPECT_EQ(parsed("5m"), 5min);
  EXPECT_EQ(parsed("10min"), 10min);
  EXPECT_EQ(parsed("2h"), 2h);
  EXPECT_EQ(parsed("2d"), 48h);
}

TEST(Duration, ReadsABareNumberAsSeconds) {
  EXPECT_EQ(parsed("90"), 90s);
  EXPECT_EQ(parsed("0"), 0ms);
}

TEST(Duration, CombinesParts) {
  EXPECT_EQ(parsed("1h30m"), 90min);
  EXPECT_EQ(parsed("1m30s"), 90s);
  EXPECT_EQ(parsed("1d2h3m4s5ms"), 24h + 2h + 3min + 4s + 5ms);
}

TEST(Duration, AcceptsFractions) {
  EXPECT_EQ(parsed("1.5s"), 1500ms);
  EXPECT_EQ(parsed("0.5m"), 30s);
  EXPECT_EQ(parsed(".25s"), 250ms);
}

TEST(Duration, IgnoresSurroundingSpaces) { EXPECT_EQ(parsed("  5m\t"), 5min); }

TEST(Duration, RejectsWhatIsNotADuration) {
  for (const char* text : {"", "   ", "5 minutes", "1h 30m", "soon", "5x", "5M", "-5s", "s", "1h30", "1.2.3s",
                           "5s10", "1e3s", "ms"})
    EXPECT_FALSE(parses(text)) << "'" << text << "'";
}

TEST(Duration, RejectionNamesTheText) {
  try {
    rb::parse_duration("5 minutes");
    FAIL() << "parsed '5 minutes'";
  } catch (const rb::error& e) {
    EXPECT_EQ(e.kind(), rb::error_kind::bad_runbook);
    EXPECT_THAT(e.what(), HasSubstr("'5 minutes'"));
    EXPECT_THAT(e.what(), HasSubstr("30s"));  // shows what a duration looks like
  }
}

TEST(Duration, LeavesTheOutputAloneWhenItFails) {
  std::chrono::milliseconds out = 123ms;
  EXPECT_FALSE(rb::try_parse_duration("5 minutes", out));
  EXPECT_EQ(out, 123ms);
}

TEST(Duration, FormatsForHumans) {
  EXPECT_EQ(rb::format_duration(250ms), "250ms");
  EXPECT_EQ(rb::format_duration(0ms), "0ms");
  EXPECT_EQ(rb::format_duration(1200ms), "1.2s");
  EXPECT_EQ(rb::format_duration(5min), "5m");
  EXPECT_EQ(rb::format_duration(90s), "1m30s");
  EXPECT_EQ(rb::format_duration(1h), "1h");
  EXPECT_EQ(rb::format_duration(90min), "1h30m");
  EXPECT_EQ(rb::format_duration(48h), "48h");
}

TEST(Duration, ReadsBackWhatItFormats) {
  for (auto d : {std::chrono::milliseconds(250ms), std::chrono::milliseconds(1500ms), std::chrono::milliseconds(5min),
                 std::chrono::milliseconds(90s), std::chrono::milliseconds(90min), std::chrono::milliseconds(3h)})
    EXPECT_EQ(parsed(rb::format_duration(d)), d) << rb::format_duration(d);
}

TEST(Duration, NumbersOfSecondsMustBeFiniteNonNegativeAndAtMostAYear) {
  std::chrono::milliseconds out{};
  EXPECT_TRUE(rb::duration_from_seconds(1.5, out));
  EXPECT_EQ(out, 1500ms);
  EXPECT_TRUE(rb::duration_from_seconds(0, out));
  EXPECT_EQ(out, 0ms);
  EXPECT_FALSE(rb::duration_from_seconds(std::nan(""), out));
  EXPECT_FALSE(rb::duration_from_seconds(std::numeric_limits<double>::infinity(), out));
  EXPECT_FALSE(rb::duration_from_seconds(-1, out));
  EXPECT_FALSE(rb::duration_from_seconds(1e300, out));
  EXPECT_FALSE(parses("400d"));
  EXPECT_TRUE(parses("365d"));
}

}  // namespace
