// Cron expressions: five fields as crontab(5) reads them, next due times in an IANA time zone.
//
//   minute hour day-of-month month day-of-week      "30 3 * * 1-5"   "*/15 * * * *"
//
// Ranges (1-5), steps (*/15, 1-30/2, 5/10 = 5-59/10), lists (1,15,30), month and day names
// (jan-dec, sun-sat, any case), Sunday as 0 or 7, and @hourly @daily @midnight @weekly
// @monthly @yearly @annually. Day of month and day of week follow Vixie cron: when both are
// restricted a day matches either; when one starts with '*' only the other counts.
//
// Time zones (the tz database, e.g. "Europe/Berlin"; "UTC" by default) with DST as cron users
// expect: a time skipped by a spring-forward runs once, at the first valid minute after the
// gap; a time repeated by a fall-back runs once, at its first occurrence.
#pragma once

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace date {
class time_zone;
}

namespace rb::schedule {

using sys_minutes = std::chrono::time_point<std::chrono::system_clock, std::chrono::minutes>;
using sys_seconds = std::chrono::time_point<std::chrono::system_clock, std::chrono::seconds>;

class cron {
 public:
  /// Parses `expr` in time zone `tz`. Throws rb::error(bad_runbook) saying which field is
  /// wrong and why ("cron '61 * * * *': minute: 61 is out of range 0-59"), for an unknown
  /// zone, and for an expression that can never match ("0 0 30 2 *": February has no 30th).
  static cron parse(const std::string& expr, const std::string& tz = "UTC");

  /// The first due time strictly after `t`.
  sys_seconds next_after(sys_seconds t) const;
  /// The due times in (from, to], at most `limit` of them (missed runs after downtime).
  std::vector<sys_seconds> due_between(sys_seconds from, sys_seconds to, std::size_t limit = 1000) const;

  const std::string& text() const { return m_text; }
  const std::string& zone() const { return m_zone; }
  /// A due time as the schedule's zone shows it: "2026-03-29 03:00 CEST".
  std::string local_string(sys_seconds t) const;

 private:
  bool day_matches(int dom, int month, int dow) const;

  std::string m_text, m_zone;
  const date::time_zone* m_tz = nullptr;
  std::bitset<60> m_minute;
  std::bitset<24> m_hour;
  std::bitset<32> m_dom;    // 1-31
  std::bitset<13> m_month;  // 1-12
  std::bitset<7> m_dow;     // 0-6, Sunday 0
  bool m_dom_star = false, m_dow_star = false;
};

/// "2026-03-29T01:00:00Z".
std::string utc_string(sys_seconds t);

}  // namespace rb::schedule
