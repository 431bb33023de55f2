// Cron: fields, names, Vixie day matching, month ends, leap days, DST in named zones, errors.
#include <gtest/gtest.h>

#include <date/date.h>

#include <cstdio>

#include "engine/error.hpp"
#include "engine/schedule/cron.hpp"

namespace rb::schedule {
namespace {

sys_seconds at(const std::string& utc) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  EXPECT_EQ(std::sscanf(utc.c_str(), "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &se), 6) << utc;
  return date::sys_days(date::year(y) / mo / d) + std::chrono::hours(h) + std::chrono::minutes(mi) +
         std::chrono::seconds(se);
}

/// The next `n` due times after `from`, as UTC strings.
std::vector<std::string> next(const std::string& expr, const std::string& from, int n = 1, const std::string& tz = "UTC") {
  cron c = cron::parse(expr, tz);
  std::vector<std::string> out;
  sys_seconds t = at(from);
  for (int i = 0; i < n; ++i) out.push_back(utc_string(t = c.next_after(t)));
  return out;
}

std::string error_of(const std::string& expr, const std::string& tz = "UTC") {
  try {
    cron::parse(expr, tz);
  } catch (const error& e) {
    EXPECT_EQ(e.kind(), error_kind::bad_runbook);
    return e.what();
  }
  ADD_FAILURE() << "parsed: " << expr;
  return "";
}

using v = std::vector<std::string>;

TEST(Cron, EveryMinuteIsStrictlyAfter) {
  EXPECT_EQ(next("* * * * *", "2026-12-03T10:15:00Z", 2), (v{"2026-12-03T10:16:00Z", "2026-12-03T10:17:00Z"}));
  EXPECT_EQ(next("* * * * *", "2026-12-03T10:15:59Z"), (v{"2026-12-03T10:16:00Z"}));
}

TEST(Cron, DailyAtThreeRollsOverDaysMonthsAndYears) {
  EXPECT_EQ(next("0 3 * * *", "2026-12-31T03:00:00Z", 2), (v{"2027-01-01T03:00:00Z", "2027-01-02T03:00:00Z"}));
  EXPECT_EQ(next("0 3 * * *", "2026-12-03T02:59:00Z"), (v{"2026-12-03T03:00:00Z"}));
}

TEST(Cron, RangesStepsAndLists) {
  EXPECT_EQ(next("*/15 * * * *", "2026-12-03T10:01:00Z", 4),
            (v{"2026-12-03T10:15:00Z", "2026-12-03T10:30:00Z", "2026-12-03T10:45:00Z", "2026-12-03T11:00:00Z"}));
  EXPECT_EQ(next("0 9-17/4 * * *", "2026-12-03T00:00:00Z", 4),
            (v{"2026-12-03T09:00:00Z", "2026-12-03T13:00:00Z", "2026-12-03T17:00:00Z", "2026-12-04T09:00:00Z"}));
  EXPECT_EQ(next("5,35 1,13 * * *", "2026-12-03T01:06:00Z", 3),
            (v{"2026-12-03T01:35:00Z", "2026-12-03T13:05:00Z", "2026-12-03T13:35:00Z"}));
  EXPECT_EQ(next("50/5 * * * *", "2026-12-03T10:00:00Z", 3),  // 50-59/5
            (v{"2026-12-03T10:50:00Z", "2026-12-03T10:55:00Z", "2026-12-03T11:50:00Z"}));
}

TEST(Cron, MonthAndDayNamesInAnyCase) {
  // 2026-12-03 is a Thursday
  EXPECT_EQ(next("0 0 * * MON-fri", "2026-12-04T12:00:00Z", 2), (v{"2026-12-07T00:00:00Z", "2026-12-08T00:00:00Z"}));
  EXPECT_EQ(next("0 0 1 jan,Jul *", "2026-12-03T00:00:00Z", 2), (v{"2027-01-01T00:00:00Z", "2027-07-01T00:00:00Z"}));
}

TEST(Cron, SundayIsZeroOrSeven) {
  v sunday{"2026-12-06T04:00:00Z"};
  EXPECT_EQ(next("0 4 * * 0", "2026-12-03T00:00:00Z"), sunday);
  EXPECT_EQ(next("0 4 * * 7", "2026-12-03T00:00:00Z"), sunday);
  EXPECT_EQ(next("0 4 * * sun", "2026-12-03T00:00:00Z"), sunday);
  EXPECT_EQ(next("0 4 * * 6-7", "2026-12-03T00:00:00Z", 2), (v{"2026-12-05T04:00:00Z", "2026-12-06T04:00:00Z"}));
}

TEST(Cron, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
  // the 15th, or any Monday (Vixie cron's OR)
  EXPECT_EQ(next("0 0 15 * 1", "2026-12-03T00:00:00Z", 3),
            (v{"2026-12-07T00:00:00Z", "2026-12-14T00:00:00Z", "2026-12-15T00:00:00Z"}));
  // a field starting with '*' does not count: */2 days that are also Mondays
  EXPECT_EQ(next("0 0 */2 * 1", "2026-12-03T00:00:00Z", 2), (v{"2026-12-07T00:00:00Z", "2026-12-21T00:00:00Z"}));
}

TEST(Cron, MonthEndsSkipMonthsWithoutTheDay) {
  EXPECT_EQ(next("0 0 31 * *", "2026-01-31T00:00:00Z", 3),
            (v{"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"}));
  EXPECT_EQ(next("0 0 30 * *", "2026-01-30T00:00:00Z"), (v{"2026-03-30T00:00:00Z"}));
}

TEST(Cron, LeapDayWaitsForALeapYear) {
  EXPECT_EQ(next("0 0 29 2 *", "2026-12-03T00:00:00Z", 2), (v{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}));
}

TEST(Cron, Macros) {
  EXPECT_EQ(next("@hourly", "2026-12-03T10:15:00Z"), (v{"2026-12-03T11:00:00Z"}));
  EXPECT_EQ(next("@daily", "2026-12-03T10:15:00Z"), (v{"2026-12-04T00:00:00Z"}));
  EXPECT_EQ(next("@midnight", "2026-12-03T10:15:00Z"), (v{"2026-12-04T00:00:00Z"}));
  EXPECT_EQ(next("@weekly", "2026-12-03T10:15:00Z"), (v{"2026-12-06T00:00:00Z"}));
  EXPECT_EQ(next("@monthly", "2026-12-03T10:15:00Z"), (v{"2027-01-01T00:00:00Z"}));
  EXPECT_EQ(next("@yearly", "2026-12-03T10:15:00Z"), (v{"2027-01-01T00:00:00Z"}));
}

TEST(Cron, NamedZoneShiftsTheDueTime) {
  // 03:00 in Berlin is 02:00 UTC in winter (CET) and 01:00 UTC in summer (CEST)
  EXPECT_EQ(next("0 3 * * *", "2026-12-03T00:00:00Z", 1, "Europe/Berlin"), (v{"2026-12-03T02:00:00Z"}));
  EXPECT_EQ(next("0 3 * * *", "2026-07-01T00:00:00Z", 1, "Europe/Berlin"), (v{"2026-07-01T01:00:00Z"}));
  EXPECT_EQ(cron::parse("0 3 * * *", "Europe/Berlin").local_string(at("2026-07-01T01:00:00Z")), "2026-07-01 03:00 CEST");
}

TEST(Cron, SpringForwardRunsASkippedTimeOnceAtTheNextValidMinute) {
  // Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist
  EXPECT_EQ(next("30 2 * * *", "2026-03-28T12:00:00Z", 3, "Europe/Berlin"),
            (v{"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"}));
  // every 15 minutes: the four skipped times run once, at 03:00 CEST, then the clock goes on
  EXPECT_EQ(next("*/15 * * * *", "2026-03-29T00:50:00Z", 3, "Europe/Berlin"),
            (v{"2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z", "2026-03-29T01:30:00Z"}));
  // America/New_York, 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC)
  EXPECT_EQ(next("0 2 * * *", "2026-03-07T12:00:00Z", 2, "America/New_York"),
            (v{"2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z"}));
}

TEST(Cron, FallBackRunsARepeatedTimeOnce) {
  // Europe/Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice
  EXPECT_EQ(next("30 2 * * *", "2026-10-24T12:00:00Z", 2, "Europe/Berlin"),
            (v{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}));
  // asked from inside the repeated hour's second pass: not again
  EXPECT_EQ(next("30 2 * * *", "2026-10-25T01:10:00Z", 1, "Europe/Berlin"), (v{"2026-10-26T01:30:00Z"}));
  // hourly jobs keep their hourly rhythm in UTC around it
  EXPECT_EQ(next("0 * * * *", "2026-10-24T23:30:00Z", 4, "Europe/Berlin"),
            (v{"2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z", "2026-10-25T04:00:00Z"}));
}

TEST(Cron, DueBetweenListsMissedRuns) {
  cron c = cron::parse("0 3 * * *");
  auto due = c.due_between(at("2026-12-01T00:00:00Z"), at("2026-12-03T03:00:00Z"));
  ASSERT_EQ(due.size(), 3u);
  EXPECT_EQ(utc_string(due.front()), "2026-12-01T03:00:00Z");
  EXPECT_EQ(utc_string(due.back()), "2026-12-03T03:00:00Z");
  EXPECT_EQ(cron::parse("* * * * *").due_between(at("2026-01-01T00:00:00Z"), at("2026-12-01T00:00:00Z"), 5).size(), 5u);
}

TEST(Cron, BadExpressionsSayWhatIsWrong) {
  EXPECT_NE(error_of("61 * * * *").find("minute: 61 is out of range 0-59"), std::string::npos);
  EXPECT_NE(error_of("* 24 * * *").find("hour: 24 is out of range 0-23"), std::string::npos);
  EXPECT_NE(error_of("* * 0 * *").find("day of month: 0 is out of range 1-31"), std::string::npos);
  EXPECT_NE(error_of("* * * 13 *").find("month: 13 is out of range 1-12"), std::string::npos);
  EXPECT_NE(error_of("* * * * 8").find("day of week: 8 is out of range 0-7"), std::string::npos);
  EXPECT_NE(error_of("* * * *").find("needs 5 fields"), std::string::npos);
  EXPECT_NE(error_of("* * * * * *").find("found 6"), std::string::npos);
  EXPECT_NE(error_of("*/0 * * * *").find("step '0' must be a positive number"), std::string::npos);
  EXPECT_NE(error_of("5-1 * * * *").find("range 5-1 goes backwards"), std::string::npos);
  EXPECT_NE(error_of("1,,2 * * * *").find("empty list item"), std::string::npos);
  EXPECT_NE(error_of("* * * foo *").find("'foo' is not a number (a number or a name such as jan)"), std::string::npos);
  EXPECT_NE(error_of("0 0 30 2 *").find("never occurs"), std::string::npos);
  EXPECT_NE(error_of("@reboot").find("@reboot"), std::string::npos);
  EXPECT_NE(error_of("@fortnightly").find("unknown macro"), std::string::npos);
  EXPECT_NE(error_of("0 3 * * *", "Mars/Olympus").find("unknown time zone 'Mars/Olympus'"), std::string::npos);
}

}  // namespace
}  // namespace rb::schedule
