// A run session: everything `run`, `resume` and `rollback` do around the executor: the target
// (or a --sandbox cluster seeded from the fixture), the audit log, the executor, and the end.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "engine/alert/dispatcher.hpp"
#include "engine/alert/notification.hpp"
#include "engine/audit/log.hpp"
#include "engine/run/config.hpp"
#include "engine/run/confirm.hpp"
#include "engine/run/executor.hpp"
#include "engine/run/journal.hpp"
#include "engine/run/model.hpp"
#include "engine/run/reporter.hpp"
#include "engine/run/target.hpp"
#include "engine/util/clock.hpp"

namespace rb::db {
class cluster;
}

namespace rb::run {

/// Where a run's database comes from, as the operator asked: a configured target, a DSN, or a
/// throwaway sandbox cluster.
struct database_choice {
  std::optional<std::string> target;  ///< --target NAME
  std::optional<std::string> dsn;     ///< --dsn DSN (RUNBOOK_DSN is read by resolve_target)
  bool sandbox = false;               ///< --sandbox: a throwaway cluster seeded from the fixture
  bool keep_sandbox = false;          ///< --keep-sandbox: leave it running afterwards (implies sandbox)
};

/// For `resume` and `rollback` of a recorded run (`what` names the command): the target the
/// run used, unless the operator names one (--target or --dsn). Throws rb::error(usage) when
/// the run ran in a --sandbox (gone now) and no other database is named.
database_choice continuation_choice(const run_state& state, database_choice flags, std::string_view what);

struct session_options {
  std::filesystem::path audit_file;   ///< the audit log (run::audit_path(state_dir))
  database_choice database;
  /// Where the session says what it does besides the run (starting a sandbox, loading the
  /// fixture, how to reach a kept sandbox). Null: nowhere.
  std::ostream* status = nullptr;
  /// Where alerts and incident notifications go. Null (the default): the session's own alert
  /// dispatcher over the config's channels (none when the config has no channels).
  alert::notifier* notifier = nullptr;
  /// Where the Prometheus textfile is rewritten when the run ends (--metrics-dir); else the
  /// config's metrics_dir; else nowhere.
  std::optional<std::filesystem::path> metrics_dir;
};

/// One run, resume or rollback from start to end: opens the database (resolving the target,
/// or starting a --sandbox cluster and loading the runbook's fixture into it), the audit log
/// (keyed by RUNBOOK_AUDIT_KEY), and the executor. `book` (loaded by the bindings, with its
/// Lua step bodies) and the services must outlive the session. A runbook whose `escalation`
/// names no policy of the config is refused (rb::error(bad_runbook) naming its file). Every outcome goes through
/// finish(): the place for what happens at the end of any run (alerts, incidents).
class session {
 public:
  /// Throws rb::error: usage for an unknown target, the cluster's error when a sandbox cannot
  /// start, sql when the fixture fails, io when the audit log cannot be opened.
  session(const runbook_def& book, config cfg, session_options options, reporter& out, confirmer& confirm,
          clock& clk);
  /// Stops and removes a sandbox cluster, unless kept (then says how to connect to it).
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  /// Runs the runbook from the start (executor::run), then finish().
  run_outcome run(const run_options& opts);
  /// Continues an interrupted run (executor::resume), then finish().
  run_outcome resume(const run_state& state, const run_options& opts);
  /// Runs the rollback path of a recorded run (executor::rollback), then finish().
  run_outcome rollback(const run_state& state, const run_options& opts, const std::optional<std::string>& phase);

  const config& cfg() const { return m_cfg; }
  target_session& target() { return *m_target; }
  audit::log& log() { return *m_log; }
  executor& exec() { return *m_exec; }

 private:
  /// Every run, resume and rollback ends here, with the outcome the executor returned: a
  /// failed run opens (or joins) an incident when a policy applies, a successful one resolves
  /// the open incidents of its runbook and target (incident::on_run_end).
  run_outcome finish(run_outcome outcome);
  /// Gives pending alert deliveries at most the config's alert_wait and says which did not
  /// arrive (they are audited as alert.failed): every run's end goes through here.
  void deliver_pending();
  /// Rewrites the metrics textfile, when there is a metrics directory. A failure is a warning
  /// on the reporter, never the run's outcome.
  void write_metrics();

  const runbook_def& m_book;
  config m_cfg;
  session_options m_options;
  std::unique_ptr<db::cluster> m_cluster;
  std::unique_ptr<target_session> m_target;
  std::unique_ptr<audit::log> m_log;
  std::unique_ptr<executor> m_exec;
  std::unique_ptr<audit::log> m_alert_log;  ///< the dispatcher's own handle (it writes from its worker)
  std::unique_ptr<alert::dispatcher> m_alerts;
  reporter& m_out;
  clock& m_clock;
};

}  // namespace rb::run
