// Time: the clock a run sleeps, measures and sets deadlines with (fakeable in tests), RFC 3339 stamps.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rb {

/// Something that can cut a sleep short (a run's stop token, run::stop_source).
class interrupt {
 public:
  virtual ~interrupt() = default;
  /// True when the sleep should end now.
  virtual bool interrupted() const = 0;
  /// Blocks up to `d` of real time, or until interrupted; true when interrupted.
  virtual bool wait_for(std::chrono::milliseconds d) const = 0;
};

/// A run's view of time: step deadlines, retry backoff and recovery patience read it. Tests
/// pass a manual_clock, which moves only when told, so a timeout or a backoff needs no real
/// sleeping.
class clock {
 public:
  virtual ~clock() = default;
  /// Monotonic now, for durations and deadlines.
  virtual std::chrono::steady_clock::time_point now() const = 0;
  /// Sleeps (retry backoff). Real clocks sleep; fakes advance.
  virtual void sleep_for(std::chrono::milliseconds d) = 0;
  /// Sleeps `d`, or less when `stop` interrupts it; false when it was cut short. Real clocks
  /// wait on `stop`; fakes advance at once unless it is interrupted already.
  virtual bool sleep_for(std::chrono::milliseconds d, const interrupt& stop) {
    if (stop.interrupted()) return false;
    sleep_for(d);
    return true;
  }
  /// A deadline of this clock as a deadline of the real steady clock, for waits that only the
  /// kernel can time (a socket, a child process): the same time left from now.
  std::chrono::steady_clock::time_point to_real(std::chrono::steady_clock::time_point t) const {
    return std::chrono::steady_clock::now() + (t - now());
  }
  /// Wall-clock now, for times that outlive the process (incidents and their escalation
  /// deadlines, written to the journal). Fakes override it to move time on at will.
  virtual std::chrono::system_clock::time_point wall_now() const { return std::chrono::system_clock::now(); }
};

/// The real clock.
class system_clock final : public clock {
 public:
  std::chrono::steady_clock::time_point now() const override;
  void sleep_for(std::chrono::milliseconds d) override;
  bool sleep_for(std::chrono::milliseconds d, const interrupt& stop) override;
  /// One real clock for everything that has no clock of its own.
  static system_clock& instance();
};

/// A clock that moves only when told: it starts at the real time it was made, sleep_for()
/// advances it at once (and records the sleep), advance() moves it from any thread.
class manual_clock final : public clock {
 public:
  std::chrono::steady_clock::time_point now() const override {
    return m_start + std::chrono::nanoseconds(m_offset.load());
  }
  void sleep_for(std::chrono::milliseconds d) override;
  using clock::sleep_for;
  /// Moves time forward by `d`.
  void advance(std::chrono::nanoseconds d) { m_offset.fetch_add(d.count()); }
  /// The sleeps asked of this clock, in order.
  std::vector<std::chrono::milliseconds> sleeps() const;

 private:
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
  std::atomic<long long> m_offset{0};
  mutable std::mutex m_mutex;
  std::vector<std::chrono::milliseconds> m_sleeps;
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
