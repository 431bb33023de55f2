// Time: the clock the executor sleeps and measures with (fakeable in tests), RFC 3339 stamps.
#pragma once

#include <chrono>
#include <string>

namespace rb {

/// The executor's view of time. Tests pass a fake that records sleeps instead of sleeping.
class clock {
 public:
  virtual ~clock() = default;
  /// Monotonic now, for durations and deadlines.
  virtual std::chrono::steady_clock::time_point now() const = 0;
  /// Sleeps (retry backoff). Real clocks sleep; fakes advance.
  virtual void sleep_for(std::chrono::milliseconds d) = 0;
};

/// The real clock.
class system_clock final : public clock {
 public:
  std::chrono::steady_clock::time_point now() const override;
  void sleep_for(std::chrono::milliseconds d) override;
};

/// Wall-clock time as RFC 3339 UTC with milliseconds: "2026-11-22T02:26:48.123Z".
std::string rfc3339_now();
/// Compact UTC stamp for ids and file names: "20261122T022648Z".
std::string compact_utc_now();

}  // namespace rb
