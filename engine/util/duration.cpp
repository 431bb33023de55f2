// Durations as runbooks write them.
#include "engine/util/duration.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>

#include "engine/error.hpp"

namespace rb {

bool try_parse_duration(std::string_view text, std::chrono::milliseconds& out) {
  std::size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  std::size_t end = text.size();
  while (end > i && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  if (i == end) return false;
  double total_ms = 0;
  bool any = false;
  while (i < end) {
    std::size_t start = i;
    while (i < end && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == start) return false;
    double value = 0;
    std::string number(text.substr(start, i - start));
    char* stop = nullptr;
    value = std::strtod(number.c_str(), &stop);
    if (stop != number.c_str() + number.size()) return false;
    std::size_t ustart = i;
    while (i < end && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(ustart, i - ustart);
    double factor;
    if (unit == "ms") factor = 1;
    else if (unit == "s" || unit.empty()) factor = 1000;
    else if (unit == "m" || unit == "min") factor = 60'000;
    else if (unit == "h") factor = 3'600'000;
    else if (unit == "d") factor = 86'400'000;
    else return false;
    if (unit.empty() && (any || i != end)) return false;  // bare number only on its own
    total_ms += value * factor;
    any = true;
  }
  if (!any || !std::isfinite(total_ms) || total_ms < 0 || total_ms > static_cast<double>(k_max_duration.count()))
    return false;
  out = std::chrono::milliseconds(static_cast<long long>(total_ms + 0.5));
  return true;
}

bool duration_from_seconds(double seconds, std::chrono::milliseconds& out) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds * 1000 > static_cast<double>(k_max_duration.count())) return false;
  out = std::chrono::milliseconds(static_cast<long long>(seconds * 1000 + 0.5));
  return true;
}

std::chrono::milliseconds parse_duration(std::string_view text) {
  std::chrono::milliseconds out{};
  if (!try_parse_duration(text, out))
    throw error(error_kind::bad_runbook, "'" + std::string(text) +
                                             "' is not a duration (use e.g. 500ms, 30s, 5m, 1h30m)");
  return out;
}

std::string format_duration(std::chrono::milliseconds d) {
  long long ms = d.count();
  char buf[64];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", ms);
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    long long s = ms / 1000;
    if (s % 60) std::snprintf(buf, sizeof buf, "%lldm%llds", s / 60, s % 60);
    else std::snprintf(buf, sizeof buf, "%lldm", s / 60);
  } else {
    long long m = ms / 60'000;
    if (m % 60) std::snprintf(buf, sizeof buf, "%lldh%lldm", m / 60, m % 60);
    else std::snprintf(buf, sizeof buf, "%lldh", m / 60);
  }
  return buf;
}

}  // namespace rb
