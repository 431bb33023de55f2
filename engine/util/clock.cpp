// Time: the real clock, the manual clock of tests, and UTC time stamps.
#include "engine/util/clock.hpp"

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
