// The running run as runbook code sees it: its id, params, current step, and where notes go.
#pragma once

#include <string>

#include "engine/audit/log.hpp"
#include "engine/run/model.hpp"
#include "engine/run/reporter.hpp"
#include "engine/run/target.hpp"

namespace rb::run {

/// One run in progress. The bindings reach it (ctx.log, audit.note) through step_call::ctx.
class run_context {
 public:
  run_context(audit::log& log, reporter& out, std::string run_id, const runbook_def& book, json params)
      : m_log(log), m_out(out), m_run_id(std::move(run_id)), m_book(book), m_params(std::move(params)) {}

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
    return m_log.append(m_run_id, event, std::move(fields), sync);
  }
  /// ctx.log / print: shown to the operator and audited as a `log` event.
  void log(const std::string& line) {
    json f = where();
    f["message"] = line;
    json rec = audit("log", std::move(f), false);
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
  /// The deadline of the code running now, if any.
  std::optional<std::chrono::steady_clock::time_point> deadline() const { return m_deadline; }
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
  void record_statement(const db::statement_record& r) {
    json f = where();
    f["sql"] = r.sql;
    f["params"] = r.params;
    f["rows"] = r.rows;
    f["duration_ms"] = r.duration.count();
    if (!r.sqlstate.empty()) f["sqlstate"] = r.sqlstate;
    if (!r.error.empty()) f["error"] = r.error;
    if (!r.notices.empty()) f["notices"] = r.notices;
    audit("sql", std::move(f), false);  // made durable with the step's next state change
  }
  /// The configuration the run was started with (for db.connect("target")); may be null.
  const config* cfg() const { return m_config; }
  void set_config(const config* c) { m_config = c; }
  /// Applies the current deadline and timeouts to a connection (also to db.connect() ones).
  void apply_limits(db::connection& c) const {
    c.set_deadline(m_deadline);
    c.set_statement_timeout(m_statement_timeout);
    c.set_lock_timeout(m_lock_timeout);
  }
  reporter& out() { return m_out; }

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
  std::optional<std::chrono::steady_clock::time_point> m_deadline;
  milliseconds m_statement_timeout{0}, m_lock_timeout{30'000};
};

}  // namespace rb::run
