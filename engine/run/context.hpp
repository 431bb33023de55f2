// The running run as runbook code sees it: its id, params, current step, and where notes go.
#pragma once

#include <string>

#include "engine/audit/log.hpp"
#include "engine/run/model.hpp"
#include "engine/run/reporter.hpp"

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
  json audit(std::string_view event, json fields = json::object()) {
    return m_log.append(m_run_id, event, std::move(fields));
  }
  /// ctx.log / print: shown to the operator and audited as a `log` event.
  void log(const std::string& line) {
    json f = where();
    f["message"] = line;
    json rec = audit("log", std::move(f));
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
};

}  // namespace rb::run
