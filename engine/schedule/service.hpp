// The scheduler's main loop: sleep until the next due time or a signal, start what is due,
// reap children, reload on SIGHUP, stop cleanly on SIGTERM/SIGINT.
//
// No polling: the loop blocks in poll() on a signalfd (SIGTERM, SIGINT, SIGHUP, SIGCHLD) with
// a timeout that ends at the next due time (or the next incident level, or the end of a grace
// period), so an idle scheduler uses no processor time between due times.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/schedule/daemon.hpp"

namespace rb::schedule {

/// SIGTERM, SIGINT, SIGHUP and SIGCHLD, blocked in the whole process and read from a signalfd.
/// Make it before any thread starts (threads inherit the blocked set; a thread that does not
/// block them would take them instead). Children started with engine/shell/child get a clean
/// signal mask.
class signal_inbox {
 public:
  signal_inbox();
  ~signal_inbox();
  signal_inbox(const signal_inbox&) = delete;
  signal_inbox& operator=(const signal_inbox&) = delete;
  /// Blocks until a signal comes or `timeout` passes (nullopt: no limit); returns the signals
  /// that came, in order (empty when the time ran out).
  std::vector<int> wait(std::optional<std::chrono::milliseconds> timeout);

 private:
  int m_fd = -1;
};

struct service_options {
  /// Start what is due now, wait for those runs, and return (cron, Kubernetes CronJob).
  bool once = false;
  /// With once: pretend it is this time for what is due (testing schedules and catch-up).
  std::optional<sys_seconds> now;
  /// On SIGTERM/SIGINT: how long running children may go on before they are asked to stop
  /// (SIGTERM: their rollback path runs), and then before they are killed.
  std::chrono::seconds grace{300};
};

struct service_hooks {
  /// SIGHUP: the new schedule. May throw; the old schedule is kept and the error logged.
  std::function<std::vector<entry>()> reload;
  /// At every wake: advance incident escalations; returns when the next level falls due.
  std::function<std::optional<std::chrono::system_clock::time_point>()> on_wake;
};

/// Runs the daemon until a stop signal (then the grace period, SIGTERM, another grace period,
/// SIGKILL) or, with `once`, until the runs it started have ended. Every event goes to `log`
/// as well as what the daemon itself reports. Returns the exit code: 0; with `once`, 1 when a
/// run it started did not succeed.
int serve(daemon& d, signal_inbox& signals, const service_options& opts, const service_hooks& hooks,
          const event_sink& log);

/// Rewrites the Prometheus textfile dir/runbook.prom (engine/report/metrics_file) with the
/// schedules' next due times after `now` beside what the audit log says of the runs. A
/// failure is logged as `schedule.metrics_failed`, never fatal.
void write_metrics(const daemon& d, const std::filesystem::path& dir, const std::filesystem::path& audit_path,
                   sys_seconds now, const event_sink& log);

/// One log line: "2026-12-03T16:00:00.123Z schedule.start runbook=x target=y due=..." or, with
/// `as_json`, {"ts": ..., "event": ..., fields...}.
std::string format_event(const std::string& event, const json& fields, bool as_json);

}  // namespace rb::schedule
