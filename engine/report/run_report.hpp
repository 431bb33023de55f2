// `runbook report`: one run read back from the audit log as a report (header, phases and steps
// on a time axis, SQL and shell per step, watch samples and decisions, incidents, notifications,
// the chain's verification), and its renderings as a self-contained HTML page and as Markdown.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/audit/log.hpp"

namespace rb::report {

using json = nlohmann::json;

/// Times in a report are milliseconds since the run started (its first run.start record).

/// One SQL statement (or one statement run `executions` times in a loop) of a step.
struct sql_statement {
  long long at_ms = 0;
  std::string sql;
  long long params = 0, rows = 0, executions = 1, duration_ms = 0;
  std::string sqlstate;  ///< empty when it succeeded
  bool in_rollback = false;  ///< run by the step's rollback handler
};

/// One command a step ran (argv already redacted by the audit).
struct shell_command {
  long long at_ms = 0;
  std::vector<std::string> argv;
  int exit_code = 0;
  long long duration_ms = 0;
  std::string stdout_tail, stderr_tail;
  bool psql = false;
  bool in_rollback = false;
};

/// One attempt of a step: all but the last of a retried step failed.
struct attempt {
  int number = 1;
  long long start_ms = 0, end_ms = -1;  ///< end -1: never ended (the process died)
  std::string status;                   ///< succeeded, failed, skipped, retried
  std::string error;
  long long delay_ms = 0;  ///< the backoff before the next attempt (retried only)
};

/// A rollback handler's run (saga compensation).
struct rollback_run {
  long long start_ms = 0, end_ms = -1;
  std::string status, error;
};

struct step_report {
  std::string phase, name;
  long long start_ms = -1, end_ms = -1;
  std::string status;  ///< succeeded, failed, skipped, ... or "interrupted" with no step.end
  std::string error;
  std::vector<attempt> attempts;
  std::vector<rollback_run> rollbacks;
  std::vector<sql_statement> sql;
  std::vector<shell_command> shell;
  std::vector<std::string> notes;  ///< ctx.log lines, notes, confirmations, checklist items, verify
};

struct phase_report {
  std::string name;
  long long start_ms = -1, end_ms = -1;
  std::string status;
  bool transaction = false;
  std::string transaction_outcome;  ///< committed, rolled_back, ... (transactional phases)
  bool is_watch = false;
  std::vector<step_report> steps;
};

/// A trigger's comparison of a metric with a constant, as drawn on the metric's sparkline.
struct threshold {
  std::string trigger, op;
  double value = 0;
};

/// Quiet samples folded into one sample.summary record.
struct sample_band {
  long long from_ms = 0, to_ms = 0;  ///< since the watch began
  double min = 0, max = 0;
};

struct metric_series {
  std::string name, source;  ///< source: its SQL, or "function"
  std::vector<std::pair<long long, double>> points;  ///< (ms since the watch began, value)
  std::vector<sample_band> bands;
  std::vector<threshold> thresholds;
};

struct watch_decision {
  long long elapsed_ms = 0;  ///< since the watch began
  std::string trigger, decision, condition, action, reason;
  json values = json::object();
};

struct watch_trigger {
  std::string name, when, action;
};

struct watch_report {
  std::string name, phase;
  long long start_ms = 0, end_ms = -1;  ///< since the run began
  long long every_ms = 0, lasting_ms = 0, samples = 0;
  std::string end, end_trigger, end_reason;
  std::vector<watch_trigger> triggers;
  std::vector<metric_series> metrics;
  std::vector<watch_decision> decisions;
};

/// One alert.sent / alert.failed / alert.skipped record: a notification to one channel.
struct notification {
  long long at_ms = 0;
  std::string ts, outcome, channel, type, severity, action, incident, reason, status;
  long long level = 0;
};

struct incident_event {
  std::string ts, event, detail;
};

struct incident_report {
  std::string id, severity, summary, cause, state, opened;
  long long level = 0;
  std::vector<incident_event> events;
};

struct run_report {
  std::string run_id, runbook, title, file, file_sha256, target, op, reason, started, ended;
  std::string status;  ///< run.end's status, or "running" / "interrupted" (no run.end)
  long long duration_ms = 0;
  json params = json::object();
  std::string error, failed_step;
  int resumes = 0;
  std::vector<phase_report> phases;
  std::vector<watch_report> watches;
  std::vector<notification> notifications;
  std::vector<incident_report> incidents;
  std::filesystem::path audit_file;
  audit::verify_result chain;

  /// Every step of every phase, in order.
  std::vector<const step_report*> steps() const;
};

/// The report of the run whose id is `id` or begins with it, from the audit log `log`, with the
/// chain verified under `key`. Throws rb::error(usage) when no run matches (naming the closest
/// run id), or several do.
run_report build(const std::filesystem::path& log, const std::string& id, const std::optional<std::string>& key);

/// The report from the run's own records and those of the incidents it opened (in log order).
run_report build_from(const std::vector<json>& run_records, const std::vector<json>& incident_records);

/// The comparisons of one metric with a constant in a `when` expression, as written:
/// "x > 10 and y <= 0.5" gives {x, >, 10} for x.
std::vector<threshold> thresholds_in(const std::string& when, const std::string& metric);

/// One self-contained HTML page: inline CSS and SVG, no script, no external URL. Every text
/// from the log is escaped and passed through secrets::redact.
std::string render_html(const run_report& r);

/// Markdown for a postmortem: the same content as tables and code blocks.
std::string render_md(const run_report& r);

}  // namespace rb::report
