// Time: the real clock and UTC time stamps.
#include "engine/util/clock.hpp"

#include <ctime>
#include <thread>

namespace rb {

std::chrono::steady_clock::time_point system_clock::now() const {
  return std::chrono::steady_clock::now();
}

void system_clock::sleep_for(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

namespace {
std::string format_utc(const char* fmt, bool millis) {
  auto now = std::chrono::system_clock::now();
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

std::string rfc3339_now() { return format_utc("%Y-%m-%dT%H:%M:%S", true); }
std::string compact_utc_now() { return format_utc("%Y%m%dT%H%M%S", false); }

}  // namespace rb
