// Time: the real clock, the manual clock of tests, and UTC time stamps.
#include "engine/util/clock.hpp"

#include <cstdio>
#include <ctime>
#include <thread>

namespace rb {

std::chrono::steady_clock::time_point system_clock::now() const {
  return std::chrono::steady_clock::now();
}

void system_clock::sleep_for(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

bool system_clock::sleep_for(std::chrono::milliseconds d, const interrupt& stop) { return !stop.wait_for(d); }

system_clock& system_clock::instance() {
  static system_clock c;
  return c;
}

void manual_clock::sleep_for(std::chrono::milliseconds d) {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_sleeps.push_back(d);
  }
  advance(d);
}

std::vector<std::chrono::milliseconds> manual_clock::sleeps() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_sleeps;
}

namespace {
std::string format_utc(const char* fmt, bool millis, std::chrono::system_clock::time_point now) {
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, fmt, &tm);
  std::string out(buf, n);
  if (millis) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03lld", static_cast<long long>(ms));
    out += frac;
  }
  out += 'Z';
  return out;
}
}  // namespace

std::string rfc3339_now() { return rfc3339(std::chrono::system_clock::now()); }
std::string rfc3339(std::chrono::system_clock::time_point t) { return format_utc("%Y-%m-%dT%H:%M:%S", true, t); }
std::string compact_utc_now() { return format_utc("%Y%m%dT%H%M%S", false, std::chrono::system_clock::now()); }

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  int ms = 0;
  char z = 0;
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6)
    return std::nullopt;
  std::string_view rest = std::string_view(s).substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && rest[0] == '.') {
    std::size_t i = 1;
    int digits = 0;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
      if (digits < 3) ms = ms * 10 + (rest[i] - '0'), ++digits;
      ++i;
    }
    while (digits < 3) ms *= 10, ++digits;
    rest.remove_prefix(i);
  }
  if (rest.size() != 1) return std::nullopt;
  z = rest[0];
  if (z != 'Z') return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::time_t secs = ::timegm(&tm);
  return std::chrono::system_clock::from_time_t(secs) + std::chrono::milliseconds(ms);
}

}  // namespace rb
