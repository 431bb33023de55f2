// `runbook report --format md`: the run as Markdown for a postmortem (tables, SQL in code blocks).
#include <algorithm>
#include <string>

#include "engine/report/report_svg.hpp"
#include "engine/report/run_report.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::report {
namespace {

/// Text for a table cell: redacted, on one line, with `|` and markup characters escaped.
std::string cell(std::string_view text) {
  std::string in = secrets::redact(valid_utf8(text)), out;
  for (char c : in) {
    if (c == '\n' || c == '\r') out += ' ';
    else if (c == '|' || c == '\\' || c == '`' || c == '*' || c == '<' || c == '>' || c == '[' || c == ']') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out;
}

/// Inline code: redacted, on one line, fenced by more backticks than it holds.
std::string code(std::string_view text) {
  std::string in = secrets::redact(valid_utf8(text));
  std::replace(in.begin(), in.end(), '\n', ' ');
  std::size_t run = 0, longest = 0;
  std::string out;
  for (char c : in) {
    longest = std::max(longest, run = c == '`' ? run + 1 : 0);
    if (c == '|') out += '\\';  // a table's column separator even inside code (GFM unescapes it)
    out += c;
  }
  std::string fence(longest + 1, '`');
  return fence + (out.empty() || out.front() == '`' || out.back() == '`' ? " " + out + " " : out) + fence;
}

/// A fenced code block with an info string, fenced by more backticks than the text holds.
std::string block(std::string_view text, const std::string& info) {
  std::string in = secrets::redact(valid_utf8(text));
  std::size_t run = 0, longest = 2;
  for (char c : in) longest = std::max(longest, run = c == '`' ? run + 1 : 0);
  std::string fence(longest + 1, '`');
  while (!in.empty() && in.back() == '\n') in.pop_back();
  return fence + info + "\n" + in + "\n" + fence + "\n";
}

std::string span(long long from, long long to) {
  if (from < 0) return "";
  return "+" + duration_text(from) + (to >= 0 ? " → +" + duration_text(to) : " → (unfinished)");
}

}  // namespace

std::string render_md(const run_report& r) {
  std::string out = "# Run report: " + cell(r.runbook) + "\n\n";
  if (!r.title.empty()) out += cell(r.title) + "\n\n";
  out += "| | |\n|---|---|\n";
  out += "| Outcome | **" + cell(r.status) + "**" + (r.failed_step.empty() ? "" : " at " + cell(r.failed_step)) + " |\n";
  if (!r.error.empty()) out += "| Error | " + cell(r.error) + " |\n";
  out += "| Run | " + code(r.run_id) + (r.resumes ? " (resumed " + std::to_string(r.resumes) + "×)" : "") + " |\n";
  out += "| Runbook | " + cell(r.runbook) + " |\n";
  out += "| File | " + code(r.file) + " |\n";
  out += "| File SHA-256 | " + code(r.file_sha256) + " |\n";
  out += "| Target | " + cell(r.target.empty() ? "(none)" : r.target) + " |\n";
  out += "| Operator | " + cell(r.op) + " |\n";
  out += "| Reason | " + cell(r.reason.empty() ? "(none given)" : r.reason) + " |\n";
  if (!r.params.empty()) out += "| Parameters | " + code(r.params.dump()) + " |\n";
  out += "| Started | " + cell(r.started) + " |\n";
  out += "| Ended | " + cell(r.ended.empty() ? "(no run.end)" : r.ended) + " |\n";
  out += "| Duration | " + cell(duration_text(r.duration_ms)) + " |\n";
  out += "| Audit chain | " +
         (r.chain.ok ? "intact (" + std::to_string(r.chain.records) + " records)"
                     : "**BROKEN** at line " + std::to_string(r.chain.bad_line) + ": " + cell(r.chain.problem)) +
         " |\n\n";

  out += "## Timeline\n\n| Phase | Step | When | Outcome | Attempts | Rollback handler |\n|---|---|---|---|---|---|\n";
  for (const auto& p : r.phases) {
    out += "| **" + cell(p.name) + "**" + (p.is_watch ? " (watch)" : "") + " | | " + cell(span(p.start_ms, p.end_ms)) + " | " +
           cell(p.status.empty() ? "unfinished" : p.status) + (p.transaction_outcome.empty() ? "" : ", transaction " + cell(p.transaction_outcome)) +
           " | | |\n";
    for (const auto& s : p.steps) {
      std::string undo;
      for (const auto& rb : s.rollbacks) undo += (undo.empty() ? "" : ", ") + (rb.status.empty() ? std::string("unfinished") : rb.status);
      out += "| | " + cell(s.name) + " | " + cell(span(s.start_ms, s.end_ms)) + " | " + cell(s.status.empty() ? "unfinished" : s.status) +
             " | " + std::to_string(s.attempts.size()) + " | " + cell(undo) + " |\n";
    }
  }
  out += "\n";

  for (const auto& w : r.watches) {
    out += "## Watch " + cell(w.name) + "\n\nEvery " + cell(duration_text(w.every_ms)) + " for " + cell(duration_text(w.lasting_ms)) + "; " +
           std::to_string(w.samples) + " samples; ended **" + cell(w.end.empty() ? "unfinished" : w.end) + "**" +
           (w.end_reason.empty() ? "" : ": " + cell(w.end_reason)) + ".\n\n";
    out += "| Trigger | When | Action |\n|---|---|---|\n";
    for (const auto& t : w.triggers) out += "| " + cell(t.name) + " | " + code(t.when) + " | " + cell(t.action) + " |\n";
    out += "\n| Metric | Samples | Min | Max | Last | Thresholds |\n|---|---|---|---|---|---|\n";
    for (const auto& m : w.metrics) {
      double lo = 0, hi = 0;
      bool any = false;
      for (const auto& [t, v] : m.points) lo = any ? std::min(lo, v) : v, hi = any ? std::max(hi, v) : v, any = true;
      for (const auto& b : m.bands) lo = any ? std::min(lo, b.min) : b.min, hi = any ? std::max(hi, b.max) : b.max, any = true;
      std::string th;
      for (const auto& t : m.thresholds) th += (th.empty() ? "" : ", ") + cell(t.trigger) + ": " + t.op + " " + number(t.value);
      auto last = std::max_element(m.points.begin(), m.points.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      out += "| " + cell(m.name) + " | " + std::to_string(m.points.size()) + " | " + (any ? number(lo) : "") + " | " + (any ? number(hi) : "") +
             " | " + (last != m.points.end() ? number(last->second) : "") + " | " + cell(th) + " |\n";
    }
    if (!w.decisions.empty()) {
      out += "\n| At | Trigger | Decision | Condition | Values | Action |\n|---|---|---|---|---|---|\n";
      for (const auto& d : w.decisions)
        out += "| +" + cell(duration_text(d.elapsed_ms)) + " | " + cell(d.trigger) + " | " + cell(d.decision) + " | " + code(d.condition) +
               " | " + code(d.values.dump()) + " | " + cell(d.action) + " |\n";
    }
    out += "\n";
  }

  out += "## Steps, SQL and commands\n\n";
  for (const auto* s : r.steps()) {
    out += "### " + cell(s->phase) + " / " + cell(s->name) + " — " + cell(s->status.empty() ? "unfinished" : s->status) + "\n\n";
    if (s->start_ms >= 0) out += cell(span(s->start_ms, s->end_ms)) + (s->attempts.size() > 1 ? ", " + std::to_string(s->attempts.size()) + " attempts" : "") + ".\n\n";
    if (!s->error.empty()) out += "Error: " + cell(s->error) + "\n\n";
    for (const auto& a : s->attempts)
      if (a.status == "retried")
        out += "- attempt " + std::to_string(a.number) + " failed (" + cell(a.error) + "), retried after " + cell(duration_text(a.delay_ms)) + "\n";
    for (const auto& rb : s->rollbacks)
      out += "- rollback handler: " + cell(rb.status.empty() ? "unfinished" : rb.status) +
             (rb.end_ms >= 0 ? " in " + cell(duration_text(rb.end_ms - rb.start_ms)) : "") + (rb.error.empty() ? "" : ": " + cell(rb.error)) + "\n";
    for (const auto& n : s->notes) out += "- " + cell(n) + "\n";
    if (!s->attempts.empty() || !s->rollbacks.empty() || !s->notes.empty()) out += "\n";
    for (const auto& q : s->sql) {
      out += "+" + cell(duration_text(q.at_ms)) + (q.in_rollback ? " (rollback)" : "") + ", " + cell(duration_text(q.duration_ms)) + ", " +
             std::to_string(q.rows) + " rows" + (q.executions > 1 ? ", " + std::to_string(q.executions) + " executions" : "") +
             (q.params ? ", " + std::to_string(q.params) + " bound parameters" : "") + (q.sqlstate.empty() ? "" : ", SQLSTATE " + cell(q.sqlstate)) +
             ":\n\n" + block(q.sql, "sql") + "\n";
    }
    for (const auto& c : s->shell) {
      out += "+" + cell(duration_text(c.at_ms)) + (c.in_rollback ? " (rollback)" : "") + ", " + cell(duration_text(c.duration_ms)) + ", exit " +
             std::to_string(c.exit_code) + ":\n\n" + block(join(c.argv, " "), "sh") + "\n";
    }
  }

  out += "## Incidents and notifications\n\n";
  if (r.incidents.empty()) out += "No incident was opened by this run.\n\n";
  for (const auto& i : r.incidents) {
    out += "### Incident " + cell(i.id) + " — " + cell(i.state) + ", level " + std::to_string(i.level) + ", " + cell(i.severity) + "\n\n" +
           cell(i.summary) + "\n\n| Time | Event | Detail |\n|---|---|---|\n";
    for (const auto& e : i.events) out += "| " + cell(e.ts) + " | " + cell(e.event) + " | " + cell(e.detail) + " |\n";
    out += "\n";
  }
  if (r.notifications.empty()) {
    out += "No notifications were sent.\n\n";
  } else {
    out += "| Time | Outcome | Channel | Severity | Action | Incident | Detail |\n|---|---|---|---|---|---|---|\n";
    for (const auto& n : r.notifications)
      out += "| " + cell(n.ts) + " | " + cell(n.outcome) + " | " + cell(n.channel) + (n.type.empty() ? "" : " (" + cell(n.type) + ")") + " | " +
             cell(n.severity) + " | " + cell(n.action) + " | " + cell(n.incident) + (n.level ? " level " + std::to_string(n.level) : "") + " | " +
             cell(n.status) + (n.reason.empty() ? "" : " " + cell(n.reason)) + " |\n";
    out += "\n";
  }
  out += "## Audit chain\n\n";
  out += r.chain.ok ? "The hash chain of " + code(r.audit_file.string()) + " is intact: " + std::to_string(r.chain.records) +
                          " records, last hash " + code(r.chain.last_hash) + ".\n"
                    : "**The hash chain of " + code(r.audit_file.string()) + " is BROKEN** at the record on line " +
                          std::to_string(r.chain.bad_line) + ": " + cell(r.chain.problem) + ".\n";
  return out;
}

}  // namespace rb::report
