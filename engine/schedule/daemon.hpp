// The scheduler: starts due runbooks as child runs, exactly once per due time, and stops cleanly.
//
// The daemon owns the decisions (what is due, what was missed while it was down, what is still
// running, when to stop); the things it decides about come through small interfaces: a
// launcher that starts and stops child processes (one process per run, so a crashing run never
// takes the daemon down), claims that decide who runs a due time (the PostgreSQL registry
// across hosts, or a local state file for one host), and a sink for what it reports.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/schedule/cron.hpp"

namespace rb::schedule {

using json = nlohmann::json;

/// After downtime: run nothing that was missed (skip), or the latest missed due time once.
enum class missed_policy { skip, once };

/// One scheduled runbook on one target.
struct entry {
  std::string runbook;
  std::string target;            ///< empty: the runbook's own target
  cron when;
  missed_policy missed = missed_policy::skip;
  json params = json::object();
  std::string key() const { return runbook + (target.empty() ? "" : "@" + target); }
};

/// Starts and stops child runs.
class launcher {
 public:
  virtual ~launcher() = default;
  /// Starts `runbook run` for the entry; returns the child's pid.
  virtual long long start(const entry& e, const std::string& due_utc) = 0;
  /// The children that ended since the last call: pid -> exit code.
  virtual std::map<long long, int> reap() = 0;
  /// Asks a child to stop as Ctrl-C would (SIGTERM: its rollback path runs).
  virtual void terminate(long long pid) = 0;
  /// Ends a child at once (SIGKILL), after the grace period and a stop request both passed.
  virtual void kill(long long pid) = 0;
};

/// Who runs a due time. Claims must be exactly-once across every scheduler sharing them.
class claims {
 public:
  virtual ~claims() = default;
  virtual bool try_claim(const entry& e, const std::string& due_utc) = 0;
  virtual void started(const entry& e, const std::string& due_utc, long long pid) = 0;
  virtual void finished(const entry& e, const std::string& due_utc, const std::string& status) = 0;
  /// The last due time this scheduler (or its predecessor on this state) looked at, per entry key.
  virtual std::optional<sys_seconds> last_checked(const std::string& key) = 0;
  virtual void set_last_checked(const std::string& key, sys_seconds t) = 0;
  /// After try_claim said no: why, when it was not that another scheduler took the due time
  /// (another due time of the entry still running elsewhere); empty otherwise.
  virtual std::string why_not() const { return ""; }
  /// The end of a tick: what set_last_checked recorded may be written out in one go.
  virtual void flush() {}
};

/// Everything the daemon does, as events ("schedule.start", "schedule.skip", ...), for logs
/// and the audit.
using event_sink = std::function<void(const std::string& event, json fields)>;

/// The outcome name for a child's exit code (0 succeeded, 1 failed or rolled_back, 3
/// rollback_failed, 4 succeeded_with_failures, 75 locked, 130 cancelled, else "exit N").
std::string outcome_for_exit(int code);

class daemon {
 public:
  /// A child run the daemon started.
  struct child {
    entry what;
    std::string due;  ///< RFC 3339 UTC
  };

  /// `first_lookback`: with no record of when an entry was last checked (a first start, or a
  /// Kubernetes CronJob's fresh pod), due times this far back still count as due now.
  daemon(std::vector<entry> entries, launcher& l, claims& c, event_sink sink,
         std::chrono::seconds first_lookback = std::chrono::seconds(60));

  /// One pass at wall time `now`: reaps ended children, starts what is due (applying the
  /// missed-run policy for time the scheduler was not running), skips an entry whose last
  /// run is still going. Returns when the next due time is.
  sys_seconds tick(sys_seconds now);

  /// Replaces the schedule (SIGHUP reload); runs under way carry on.
  void reload(std::vector<entry> entries);

  /// Stopping: asks every running child to stop (SIGTERM) once `grace` has passed since
  /// stop_requested, and kills those still running `grace` later. Returns true when no
  /// child is left.
  bool stop(sys_seconds now, sys_seconds stop_requested, std::chrono::seconds grace);

  /// Runs that ended with another outcome than succeeded, since the daemon started.
  int unsuccessful() const { return m_unsuccessful; }
  /// Children running now, by pid.
  const std::map<long long, child>& running() const { return m_children; }
  /// A due time later than this is "late": it was missed while the scheduler was down.
  static constexpr std::chrono::seconds k_on_time{120};
  const std::vector<entry>& entries() const { return m_entries; }

 private:
  void reap();
  void start(const entry& e, sys_seconds due, const char* why);

  std::vector<entry> m_entries;
  launcher& m_launcher;
  claims& m_claims;
  event_sink m_sink;
  std::chrono::seconds m_first_lookback;
  std::map<long long, child> m_children;
  std::set<long long> m_terminated, m_killed;
  int m_unsuccessful = 0;
};

}  // namespace rb::schedule
