// Cron expressions: field parsing with clear errors, and next due times walked in local time.
#include "engine/schedule/cron.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>

#include "engine/error.hpp"

namespace rb::schedule {
namespace {

using namespace std::chrono;

struct field_spec {
  const char* name;
  int lo, hi;
  const char* const* names;  // names for lo..lo+N-1, or null
  int name_count;
};

const char* const k_months[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
const char* const k_days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

const field_spec k_fields[5] = {
    {"minute", 0, 59, nullptr, 0},
    {"hour", 0, 23, nullptr, 0},
    {"day of month", 1, 31, nullptr, 0},
    {"month", 1, 12, k_months, 12},
    {"day of week", 0, 7, k_days, 7},
};

[[noreturn]] void bad(const std::string& expr, const std::string& what) {
  throw error(error_kind::bad_runbook, "cron '" + expr + "': " + what);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int value_of(const std::string& expr, const field_spec& f, const std::string& text) {
  std::string t = lower(text);
  if (f.names)
    for (int i = 0; i < f.name_count; ++i)
      if (t == f.names[i]) return f.lo + i;
  int v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || end != t.data() + t.size()) {
    std::string hint = f.names ? std::string(" (a number or a name such as ") + f.names[0] + ")" : "";
    bad(expr, std::string(f.name) + ": '" + text + "' is not a number" + hint);
  }
  if (v < f.lo || v > f.hi)
    bad(expr, std::string(f.name) + ": " + text + " is out of range " + std::to_string(f.lo) + "-" + std::to_string(f.hi));
  return v;
}

/// Parses one field into the set of its values (lo..hi); `star` when it starts with '*'.
std::vector<int> parse_field(const std::string& expr, const field_spec& f, const std::string& text, bool& star) {
  star = !text.empty() && text[0] == '*';
  std::vector<int> out;
  std::stringstream items(text);
  std::string item;
  if (text.empty() || text.back() == ',') bad(expr, std::string(f.name) + ": empty list item");
  while (std::getline(items, item, ',')) {
    if (item.empty()) bad(expr, std::string(f.name) + ": empty list item");
    std::string base = item;
    int step = 1;
    bool stepped = false;
    if (auto slash = item.find('/'); slash != std::string::npos) {
      base = item.substr(0, slash);
      std::string s = item.substr(slash + 1);
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), step);
      if (s.empty() || ec != std::errc() || end != s.data() + s.size() || step <= 0)
        bad(expr, std::string(f.name) + ": step '" + s + "' must be a positive number");
      if (step > f.hi - f.lo + 1 && f.hi != 7)
        bad(expr, std::string(f.name) + ": step " + s + " is larger than the field's range");
      stepped = true;
    }
    int lo = f.lo, hi = f.hi;
    if (base == "*") {
      if (f.hi == 7) hi = 6;  // day of week: * is 0-6 (7 is Sunday again)
    } else if (auto dash = base.find('-'); dash != std::string::npos && dash > 0) {
      lo = value_of(expr, f, base.substr(0, dash));
      hi = value_of(expr, f, base.substr(dash + 1));
      if (hi < lo) bad(expr, std::string(f.name) + ": range " + base + " goes backwards");
    } else {
      lo = value_of(expr, f, base);
      if (stepped) hi = f.hi == 7 ? 6 : f.hi;  // "5/10" is 5-59/10 (Vixie cron)
      else hi = lo;
    }
    for (int v = lo; v <= hi; v += step) out.push_back(f.hi == 7 && v == 7 ? 0 : v);
  }
  return out;
}

std::string expand_macro(const std::string& expr) {
  std::string e = lower(expr);
  if (e == "@hourly") return "0 * * * *";
  if (e == "@daily" || e == "@midnight") return "0 0 * * *";
  if (e == "@weekly") return "0 0 * * 0";
  if (e == "@monthly") return "0 0 1 * *";
  if (e == "@yearly" || e == "@annually") return "0 0 1 1 *";
  if (e == "@reboot") bad(expr, "@reboot is not a schedule runbook can keep (use a systemd unit)");
  bad(expr, "unknown macro; use @hourly, @daily, @weekly, @monthly or @yearly");
}

}  // namespace

cron cron::parse(const std::string& expr, const std::string& tz) {
  cron c;
  c.m_text = expr;
  c.m_zone = tz.empty() ? "UTC" : tz;
  try {
    c.m_tz = date::locate_zone(c.m_zone);
  } catch (const std::exception&) {
    throw error(error_kind::bad_runbook, "cron '" + expr + "': unknown time zone '" + c.m_zone +
                                             "' (use a tz database name such as \"Europe/Berlin\" or \"UTC\")");
  }
  std::string body = expr;
  auto first = body.find_first_not_of(" \t");
  if (first != std::string::npos && body[first] == '@') body = expand_macro(body.substr(first, body.find_last_not_of(" \t") - first + 1));
  std::stringstream words(body);
  std::vector<std::string> fields;
  for (std::string w; words >> w;) fields.push_back(w);
  if (fields.size() != 5)
    bad(expr, "needs 5 fields (minute hour day-of-month month day-of-week), found " + std::to_string(fields.size()));
  bool star = false;
  for (int v : parse_field(expr, k_fields[0], fields[0], star)) c.m_minute.set(static_cast<std::size_t>(v));
  for (int v : parse_field(expr, k_fields[1], fields[1], star)) c.m_hour.set(static_cast<std::size_t>(v));
  for (int v : parse_field(expr, k_fields[2], fields[2], c.m_dom_star)) c.m_dom.set(static_cast<std::size_t>(v));
  for (int v : parse_field(expr, k_fields[3], fields[3], star)) c.m_month.set(static_cast<std::size_t>(v));
  for (int v : parse_field(expr, k_fields[4], fields[4], c.m_dow_star)) c.m_dow.set(static_cast<std::size_t>(v));
  // A day that can never come ("30 2": February has no 30th) is a mistake, not a schedule.
  bool possible = !c.m_dom_star && !c.m_dow_star;  // either field matching is enough
  static const int k_month_days[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  for (int m = 1; m <= 12 && !possible; ++m)
    for (int d = 1; d <= k_month_days[m] && !possible; ++d) possible = c.m_month[m] && c.m_dom[static_cast<std::size_t>(d)];
  if (!possible) bad(expr, "the day of month never occurs in the months given");
  return c;
}

bool cron::day_matches(int dom, int month, int dow) const {
  if (!m_month[static_cast<std::size_t>(month)]) return false;
  bool d = m_dom[static_cast<std::size_t>(dom)], w = m_dow[static_cast<std::size_t>(dow)];
  return (m_dom_star || m_dow_star) ? (d && w) : (d || w);
}

sys_seconds cron::next_after(sys_seconds t) const {
  const auto local_now = m_tz->to_local(t);
  const auto start = date::floor<minutes>(local_now) + minutes(1);
  date::local_days day = date::floor<date::days>(start);
  const auto start_tod = start - day;
  // 28 years hold every combination of leap year and weekday; the parse check makes a match certain.
  for (int n = 0; n < 366 * 28 + 7; ++n, day += date::days(1)) {
    date::year_month_day ymd{day};
    int dow = static_cast<int>(date::weekday{day}.c_encoding());
    if (!day_matches(static_cast<int>(static_cast<unsigned>(ymd.day())), static_cast<int>(static_cast<unsigned>(ymd.month())), dow))
      continue;
    int h0 = n == 0 ? static_cast<int>(duration_cast<hours>(start_tod).count()) : 0;
    for (int h = h0; h < 24; ++h) {
      if (!m_hour[static_cast<std::size_t>(h)]) continue;
      int m0 = (n == 0 && h == h0) ? static_cast<int>((start_tod - hours(h)).count()) : 0;
      for (int m = m0; m < 60; ++m) {
        if (!m_minute[static_cast<std::size_t>(m)]) continue;
        date::local_seconds cand = day + hours(h) + minutes(m);
        date::local_info info = m_tz->get_info(cand);
        sys_seconds at;
        if (info.result == date::local_info::nonexistent)
          at = info.second.begin;  // skipped by a spring-forward: the first valid minute after the gap
        else
          at = sys_seconds(cand.time_since_epoch() - info.first.offset);  // ambiguous: its first occurrence
        if (at > t) return at;
      }
    }
  }
  throw error(error_kind::internal, "cron '" + m_text + "': no due time found after " + utc_string(t));
}

std::vector<sys_seconds> cron::due_between(sys_seconds from, sys_seconds to, std::size_t limit) const {
  std::vector<sys_seconds> out;
  for (sys_seconds t = next_after(from); t <= to && out.size() < limit; t = next_after(t)) out.push_back(t);
  return out;
}

std::string cron::local_string(sys_seconds t) const {
  return date::format("%F %R %Z", date::make_zoned(m_tz, t));
}

std::string utc_string(sys_seconds t) { return date::format("%FT%TZ", t); }

}  // namespace rb::schedule
