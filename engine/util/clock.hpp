// Time: the clock the executor sleeps and measures with (fakeable in tests), RFC 3339 stamps.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace rb {

/// The executor's view of time. Tests pass a fake that records sleeps instead of sleeping.
class clock {
 public:
  virtual ~clock() = default;
  /// Monotonic now, for durations and deadlines.
  virtual std::chrono::steady_clock::time_point now() const = 0;
  /// Sleeps (retry backoff). Real clocks sleep; fakes advance.
  virtual void sleep_for(std::chrono::milliseconds d) = 0;
  /// Wall-clock now, for times that outlive the process (incidents and their escalation
  /// deadlines, written to the journal). Fakes override it to move time on at will.
  virtual std::chrono::system_clock::time_point wall_now() const { return std::chrono::system_clock::now(); }
};

/// The real clock.
class system_clock final : public clock {
 public:
  std::chrono::steady_clock::time_point now() const override;
  void sleep_for(std::chrono::milliseconds d) override;
};

/// Wall-clock time as RFC 3339 UTC with milliseconds: "2026-11-22T02:26:48.123Z".
std::string rfc3339_now();
/// `t` as RFC 3339 UTC with milliseconds.
std::string rfc3339(std::chrono::system_clock::time_point t);
/// Reads what rfc3339() writes ("2026-11-22T02:26:48.123Z"; the fraction is optional).
/// nullopt when `text` is not such a stamp.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);
/// Compact UTC stamp for ids and file names: "20261122T022648Z".
std::string compact_utc_now();

}  // namespace rb
