// Durations as runbooks write them: "250ms", "30s", "5m", "1h30m", "2d".
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace rb {

/// Parses a duration. Units: ms, s, m, h, d; parts may be combined ("1h30m"); a bare number
/// is seconds. Throws rb::error(bad_runbook) naming the text when it is not a duration.
std::chrono::milliseconds parse_duration(std::string_view text);
/// Same, but returns false instead of throwing.
bool try_parse_duration(std::string_view text, std::chrono::milliseconds& out);
/// The longest duration a runbook may ask for (a year): deadlines computed from it never
/// overflow the clock.
inline constexpr std::chrono::milliseconds k_max_duration{365LL * 24 * 3600 * 1000};
/// A duration given as a number of seconds: false unless it is finite, not negative and at
/// most k_max_duration (NaN, inf and -1 are refused, not turned into "no limit").
bool duration_from_seconds(double seconds, std::chrono::milliseconds& out);
/// Human form: "1.2s", "250ms", "5m", "1h30m".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace rb
