// The running run as runbook code sees it: its id, params, current step, where notes go, and
// its services (the clock its deadlines read, the stop token its code watches).
#pragma once

#include <string>

#include "engine/alert/notification.hpp"
#include "engine/audit/log.hpp"
#include "engine/run/model.hpp"
#include "engine/run/reporter.hpp"
#include "engine/run/stop.hpp"
#include "engine/run/target.hpp"
#include "engine/util/clock.hpp"

namespace rb::run {

/// One run in progress. The bindings reach it (ctx.log, audit.note) through step_call::ctx.
/// Its services belong to it, not to the process: several runs in one process each have their
/// own clock and stop token (use_services), so none sees another's cancel or deadline.
class run_context {
 public:
  run_context(audit::log& log, reporter& out, std::string run_id, const runbook_def& book, json params)
      : m_log(log), m_out(out), m_run_id(std::move(run_id)), m_book(book), m_params(std::move(params)) {}
  ~run_context() {
    try {
      flush_statements();
    } catch (const std::exception&) {
      // the audit log is unwritable; the error that ended the run says so already
    }
  }
  run_context(const run_context&) = delete;
  run_context& operator=(const run_context&) = delete;

  /// The clock this run's deadlines and sleeps read, and its stop token (by default the real
  /// clock and a token of its own that nothing requests).
  void use_services(rb::clock& clk, stop_source& stop) {
    m_clock = &clk;
    m_stop = &stop;
  }
  rb::clock& clock() const { return *m_clock; }
  stop_source& stop() const { return *m_stop; }
  /// Throws rb::error(cancelled) when a stop was requested and not taken up, or
  /// rb::error(timeout) when the code running now is past its deadline on the run's clock:
  /// what the sandbox's hook does for Lua, for code written in C++.
  void check_interrupt() const {
    if (m_stop->requested()) throw error(error_kind::cancelled, "interrupted by the operator");
    if (m_deadline && m_clock->now() >= *m_deadline)
      throw error(error_kind::timeout, "exceeded its time limit and was stopped");
  }

  const std::string& run_id() const { return m_run_id; }
  const runbook_def& book() const { return m_book; }
  const json& params() const { return m_params; }
  const phase_def* phase() const { return m_phase; }
  const step_def* step() const { return m_step; }
  void set_position(const phase_def* phase, const step_def* step) {
    m_phase = phase;
    m_step = step;
  }

  /// Appends a record of this run to the audit log.
  json audit(std::string_view event, json fields = json::object(), bool sync = true) {
    flush_statements();  // records stay in the order things happened
    return m_log.append(m_run_id, event, std::move(fields), sync);
  }
  /// ctx.log / print: shown to the operator and audited as a `log` event.
  void log(const std::string& line) {
    json f = where();
    f["message"] = line;
    json rec = audit("log", std::move(f), false);  // audit() writes pending statements first
    m_out.message(rec["message"].get<std::string>());
  }
  /// audit.note(message, fields): an operator-visible note in the audit log.
  void note(const std::string& message, json fields) {
    json f = where();
    f["message"] = message;
    if (!fields.is_null()) f["fields"] = std::move(fields);
    json rec = audit("note", std::move(f));
    m_out.message("note: " + rec["message"].get<std::string>());
  }
  audit::log& audit_log() { return m_log; }

  /// The run's database target (null when the executor was given none).
  target_session* target() const { return m_target; }
  void set_target(target_session* t) { m_target = t; }
  /// Limits for the code running now: its deadline and the step's database timeouts.
  void set_limits(std::optional<std::chrono::steady_clock::time_point> deadline, milliseconds statement_timeout,
                  milliseconds lock_timeout) {
    m_deadline = deadline;
    m_statement_timeout = statement_timeout;
    m_lock_timeout = lock_timeout;
  }
  /// The deadline of the code running now, if any, on the run's clock().
  std::optional<std::chrono::steady_clock::time_point> deadline() const { return m_deadline; }
  /// The current step's database timeouts (0 = none), for sessions the engine does not own (psql).
  milliseconds statement_timeout() const { return m_statement_timeout; }
  milliseconds lock_timeout() const { return m_lock_timeout; }
  /// The target's connection with the current step's deadline and timeouts applied.
  /// Throws rb::error(usage) when the run has no target.
  db::connection& database() {
    if (!m_target) throw error(error_kind::usage, "this run has no database target");
    db::connection& c = m_target->get();
    apply_limits(c);
    return c;
  }
  /// Audits one statement as a `sql` record of the current phase and step: its text, the
  /// number of bound parameters (never their values), rows, duration, SQLSTATE, notices.
  /// Consecutive successful runs of the same statement in the same step (a loop of INSERTs)
  /// make one record with `executions` and totals; it is written before the next record of
  /// any other kind, when 1,000 executions or one second have gathered, and at the end.
  void record_statement(const db::statement_record& r) {
    m_out.statement(r.sql, r.rows, r.duration, r.sqlstate);  // --verbose shows each one
    bool same = m_pending && r.sqlstate.empty() && r.notices.empty() && m_pending_sql == r.sql &&
                m_pending_params == r.params && m_pending_phase == m_phase && m_pending_step == m_step;
    if (same) {
      json& f = *m_pending;
      f["executions"] = f["executions"].get<long long>() + 1;
      f["rows"] = f["rows"].get<long long>() + r.rows;
      f["duration_ms"] = f["duration_ms"].get<long long>() + r.duration.count();
      if (f["executions"].get<long long>() >= 1000 ||
          std::chrono::steady_clock::now() - m_pending_since > std::chrono::seconds(1))
        flush_statements();
      return;
    }
    flush_statements();
    json f = where();
    f["sql"] = r.sql;
    f["params"] = r.params;
    f["rows"] = r.rows;
    f["duration_ms"] = r.duration.count();
    f["executions"] = 1;
    if (!r.sqlstate.empty()) f["sqlstate"] = r.sqlstate;
    if (!r.error.empty()) f["error"] = r.error;
    if (!r.notices.empty()) f["notices"] = r.notices;
    if (!r.sqlstate.empty() || !r.notices.empty()) {
      m_log.append(m_run_id, "sql", std::move(f), false);  // failures and notices: at once
      return;
    }
    m_pending = std::move(f);
    m_pending_sql = r.sql;
    m_pending_params = r.params;
    m_pending_phase = m_phase;
    m_pending_step = m_step;
    m_pending_since = std::chrono::steady_clock::now();
  }
  /// Writes the gathered statement record, if any (made durable with the next state change).
  void flush_statements() {
    if (!m_pending) return;
    json f = std::move(*m_pending);
    m_pending.reset();
    m_log.append(m_run_id, "sql", std::move(f), false);
  }
  /// The configuration the run was started with (for db.connect("target")); may be null.
  const config* cfg() const { return m_config; }
  void set_config(const config* c) { m_config = c; }
  /// Where the run's alerts and incident notifications go; may be null (none configured).
  alert::notifier* notifier() const { return m_notifier; }
  void set_notifier(alert::notifier* n) { m_notifier = n; }
  /// Applies the current deadline and timeouts to a connection (also to db.connect() ones).
  void apply_limits(db::connection& c) const {
    // The connection waits on its socket in real time: the same time left, on the real clock.
    c.set_deadline(m_deadline ? std::optional(m_clock->to_real(*m_deadline)) : std::nullopt);
    c.set_statement_timeout(m_statement_timeout);
    c.set_lock_timeout(m_lock_timeout);
  }
  reporter& out() { return m_out; }
  /// When this process began the run (for durations shown to people: templates, alerts).
  std::chrono::steady_clock::time_point started() const { return m_started; }
  /// The failure that ended the run ("phase/step" and the error in words), set before its
  /// rollback handlers run, so they can say what happened.
  struct failure_info {
    std::string step, error;
  };
  const std::optional<failure_info>& failure() const { return m_failure; }
  void set_failure(std::string step, std::string error) { m_failure = failure_info{std::move(step), std::move(error)}; }

 private:
  json where() const {
    json f = json::object();
    if (m_phase) f["phase"] = m_phase->name;
    if (m_step) f["step"] = m_step->name;
    return f;
  }

  audit::log& m_log;
  reporter& m_out;
  std::string m_run_id;
  const runbook_def& m_book;
  json m_params;
  const phase_def* m_phase = nullptr;
  const step_def* m_step = nullptr;
  target_session* m_target = nullptr;
  const config* m_config = nullptr;
  stop_source m_own_stop;
  rb::clock* m_clock = &system_clock::instance();
  stop_source* m_stop = &m_own_stop;
  alert::notifier* m_notifier = nullptr;
  std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();
  std::optional<failure_info> m_failure;
  std::optional<std::chrono::steady_clock::time_point> m_deadline;
  milliseconds m_statement_timeout{0}, m_lock_timeout{30'000};
  std::optional<json> m_pending;  ///< a statement record gathering repeated executions
  std::string m_pending_sql;
  std::size_t m_pending_params = 0;
  const phase_def* m_pending_phase = nullptr;
  const step_def* m_pending_step = nullptr;
  std::chrono::steady_clock::time_point m_pending_since;
};

}  // namespace rb::run
