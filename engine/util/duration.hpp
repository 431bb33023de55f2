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
/// Human form: "1.2s", "250ms", "5m", "1h30m".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace rb
