// `runbook report --format html`: the run as one self-contained page (inline CSS and SVG, no script).
#include <cctype>
#include <string>

#include "engine/report/report_svg.hpp"
#include "engine/report/run_report.hpp"
#include "engine/util/text.hpp"

namespace rb::report {
namespace {

constexpr const char* k_style = R"css(
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232b; margin: 24px auto; max-width: 1140px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #d5dbe3; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
table { border-collapse: collapse; margin: 6px 0 10px; } th, td { text-align: left; vertical-align: top; padding: 3px 10px 3px 0; }
table.grid th, table.grid td { border-bottom: 1px solid #e6eaf0; padding: 3px 10px; } table.grid th { background: #f3f5f8; }
table.meta th { color: #5b6675; font-weight: 600; padding-right: 18px; }
code, pre { font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; } pre { background: #f5f7fa; border: 1px solid #e1e6ec; padding: 6px 8px; margin: 0; white-space: pre-wrap; word-break: break-word; }
.outcome { font-weight: 700; padding: 1px 8px; border-radius: 3px; }
.outcome.succeeded { background: #d8f0dd; color: #17632a; } .outcome.rolled_back, .outcome.succeeded_with_failures { background: #fbe8c8; color: #7a4a00; }
.outcome.failed, .outcome.rollback_failed, .outcome.cancelled { background: #f8d4d2; color: #8a1c16; } .outcome.unfinished { background: #e4e7ec; }
.ok { color: #17632a; font-weight: 600; } .bad { color: #8a1c16; font-weight: 600; } .muted { color: #6b7684; }
svg { display: block; margin: 6px 0 12px; background: #fff; }
svg text { font: 11px system-ui, sans-serif; fill: #3a4451; } svg .phase-label { font-weight: 700; }
.axis line { stroke: #9aa5b1; stroke-width: 1; } .axis line.tick { stroke: #eceff3; }
rect.phase { fill: #c9d3df; } rect.phase.watch { fill: #bfe3cc; } rect.phase.failed { fill: #f1c6c3; }
rect.step { fill: #3b7dd8; } rect.step.retry { fill: #f0a030; } rect.step.failed { fill: #d9483b; }
rect.rollback { fill: #8e44ad; } rect.rollback.failed { fill: #4a1a5e; }
polygon.decision { fill: #c0392b; stroke: #fff; stroke-width: 1; } line.decision { stroke: #c0392b; stroke-width: 1; stroke-dasharray: 2 3; }
rect.plot { fill: #fafbfc; stroke: #e1e6ec; } polyline.metric { fill: none; stroke: #3b7dd8; stroke-width: 2; } circle.sample { fill: #3b7dd8; }
rect.band { fill: #3b7dd8; fill-opacity: 0.15; } line.threshold { stroke: #d9483b; stroke-width: 1.5; stroke-dasharray: 6 4; } text.threshold-label { fill: #b03a2e; }
.legend span { display: inline-block; margin-right: 14px; } .legend i { display: inline-block; width: 14px; height: 10px; margin-right: 5px; vertical-align: middle; }
.step-block { border-left: 3px solid #c9d3df; padding-left: 12px; margin: 14px 0; }
footer { margin-top: 36px; color: #6b7684; font-size: 12px; }
)css";

std::string h(std::string_view s) { return html_text(s); }

std::string row(const std::string& name, const std::string& value_html) {
  return "<tr><th>" + h(name) + "</th><td>" + value_html + "</td></tr>\n";
}

std::string outcome_badge(const std::string& status) {
  std::string cls;
  for (char c : status) cls += std::isalnum(static_cast<unsigned char>(c)) || c == '_' ? c : '_';
  return "<span class=\"outcome " + cls + "\">" + h(status) + "</span>";
}

std::string header(const run_report& r) {
  std::string out = "<header><h1>Run report: " + h(r.runbook) + "</h1>";
  if (!r.title.empty()) out += "<p class=\"muted\">" + h(r.title) + "</p>";
  out += "<table class=\"meta\">\n";
  out += row("Outcome", outcome_badge(r.status) + (r.failed_step.empty() ? "" : " at <b>" + h(r.failed_step) + "</b>"));
  if (!r.error.empty()) out += row("Error", h(r.error));
  out += row("Run", "<code>" + h(r.run_id) + "</code>" + (r.resumes ? " (resumed " + std::to_string(r.resumes) + "×)" : ""));
  out += row("Runbook", h(r.runbook));
  out += row("File", "<code>" + h(r.file) + "</code>");
  out += row("File SHA-256", "<code>" + h(r.file_sha256) + "</code>");
  out += row("Target", h(r.target.empty() ? "(none)" : r.target));
  out += row("Operator", h(r.op));
  out += row("Reason", r.reason.empty() ? "<span class=\"muted\">(none given)</span>" : h(r.reason));
  if (!r.params.empty()) out += row("Parameters", "<code>" + h(r.params.dump()) + "</code>");
  out += row("Started", h(r.started));
  out += row("Ended", r.ended.empty() ? "<span class=\"muted\">(no run.end)</span>" : h(r.ended));
  out += row("Duration", h(duration_text(r.duration_ms)));
  std::string chain = r.chain.ok ? "<span class=\"ok\">intact</span> (" + std::to_string(r.chain.records) + " records)"
                                 : "<span class=\"bad\">BROKEN</span> at line " + std::to_string(r.chain.bad_line) + ": " + h(r.chain.problem);
  out += row("Audit chain", chain);
  return out + "</table></header>\n";
}

std::string timeline(const run_report& r) {
  std::string out = "<section id=\"timeline\"><h2>Timeline</h2>\n<p class=\"legend\">"
                    "<span><i style=\"background:#c9d3df\"></i>phase</span><span><i style=\"background:#bfe3cc\"></i>watch</span>"
                    "<span><i style=\"background:#3b7dd8\"></i>step</span><span><i style=\"background:#f0a030\"></i>attempt that was retried</span>"
                    "<span><i style=\"background:#d9483b\"></i>failed</span><span><i style=\"background:#8e44ad\"></i>rollback handler</span>"
                    "<span><i style=\"background:#c0392b\"></i>watch decision</span></p>\n";
  return out + timeline_svg(r) + "\n</section>\n";
}

std::string watches(const run_report& r) {
  if (r.watches.empty()) return "";
  std::string out = "<section id=\"watches\"><h2>Watches</h2>\n";
  for (const auto& w : r.watches) {
    out += "<h3>watch " + h(w.name) + "</h3>\n<p>every " + h(duration_text(w.every_ms)) + " for " + h(duration_text(w.lasting_ms)) +
           "; " + std::to_string(w.samples) + " samples; ended <b>" + h(w.end.empty() ? "unfinished" : w.end) + "</b>" +
           (w.end_reason.empty() ? "" : ": " + h(w.end_reason)) + "</p>\n";
    out += "<table class=\"grid\"><tr><th>trigger</th><th>when</th><th>action</th></tr>\n";
    for (const auto& t : w.triggers)
      out += "<tr><td>" + h(t.name) + "</td><td><code>" + h(t.when) + "</code></td><td>" + h(t.action) + "</td></tr>\n";
    out += "</table>\n";
    for (const auto& m : w.metrics) {
      out += "<h3>metric " + h(m.name) + "</h3>\n<pre><code>" + h(m.source) + "</code></pre>\n";
      out += sparkline_svg(w, m) + "\n";
    }
    if (!w.decisions.empty()) {
      out += "<table class=\"grid decisions\"><tr><th>at</th><th>trigger</th><th>decision</th><th>condition</th><th>values</th><th>action</th></tr>\n";
      for (const auto& d : w.decisions)
        out += "<tr><td>+" + h(duration_text(d.elapsed_ms)) + "</td><td>" + h(d.trigger) + "</td><td>" + h(d.decision) +
               "</td><td><code>" + h(d.condition) + "</code></td><td><code>" + h(d.values.dump()) + "</code></td><td>" +
               h(d.action) + "</td></tr>\n";
      out += "</table>\n";
    }
  }
  return out + "</section>\n";
}

std::string step_detail(const step_report& s) {
  std::string out = "<div class=\"step-block\"><h3>" + h(s.phase) + " / " + h(s.name) + " — " +
                    outcome_badge(s.status.empty() ? "unfinished" : s.status) + "</h3>\n";
  if (s.start_ms >= 0)
    out += "<p>+" + h(duration_text(s.start_ms)) + (s.end_ms >= 0 ? " to +" + h(duration_text(s.end_ms)) + " (" + h(duration_text(s.end_ms - s.start_ms)) + ")" : "") +
           (s.attempts.size() > 1 ? ", " + std::to_string(s.attempts.size()) + " attempts" : "") + "</p>\n";
  if (!s.error.empty()) out += "<p class=\"bad\">" + h(s.error) + "</p>\n";
  if (s.attempts.size() > 1) {
    out += "<table class=\"grid attempts\"><tr><th>attempt</th><th>outcome</th><th>took</th><th>error</th></tr>\n";
    for (const auto& a : s.attempts)
      out += "<tr><td>" + std::to_string(a.number) + "</td><td>" + h(a.status == "retried" ? "failed" : a.status) + (a.delay_ms ? " (retried after " + h(duration_text(a.delay_ms)) + ")" : "") +
             "</td><td>" + (a.end_ms >= 0 ? h(duration_text(a.end_ms - a.start_ms)) : "") + "</td><td>" + h(a.error) + "</td></tr>\n";
    out += "</table>\n";
  }
  for (const auto& rb : s.rollbacks)
    out += "<p>rollback handler: <b>" + h(rb.status.empty() ? "unfinished" : rb.status) + "</b>" +
           (rb.end_ms >= 0 ? " in " + h(duration_text(rb.end_ms - rb.start_ms)) : "") + (rb.error.empty() ? "" : ": " + h(rb.error)) + "</p>\n";
  if (!s.sql.empty()) {
    out += "<table class=\"grid sql\"><tr><th>at</th><th>took</th><th>rows</th><th>statement</th></tr>\n";
    for (const auto& q : s.sql)
      out += "<tr><td>+" + h(duration_text(q.at_ms)) + (q.in_rollback ? "<br><span class=\"muted\">rollback</span>" : "") + "</td><td>" +
             h(duration_text(q.duration_ms)) + "</td><td>" + std::to_string(q.rows) +
             (q.executions > 1 ? " (" + std::to_string(q.executions) + "×)" : "") +
             (q.sqlstate.empty() ? "" : "<br><span class=\"bad\">SQLSTATE " + h(q.sqlstate) + "</span>") + "</td><td><pre><code class=\"sql\">" +
             h(q.sql) + "</code></pre>" + (q.params ? "<span class=\"muted\">" + std::to_string(q.params) + " bound parameters</span>" : "") +
             "</td></tr>\n";
    out += "</table>\n";
  }
  if (!s.shell.empty()) {
    out += "<table class=\"grid shell\"><tr><th>at</th><th>took</th><th>exit</th><th>command</th></tr>\n";
    for (const auto& c : s.shell) {
      out += "<tr><td>+" + h(duration_text(c.at_ms)) + (c.in_rollback ? "<br><span class=\"muted\">rollback</span>" : "") + "</td><td>" +
             h(duration_text(c.duration_ms)) + "</td><td>" + std::to_string(c.exit_code) + "</td><td><pre><code>" + h(join(c.argv, " ")) + "</code></pre>";
      if (!c.stderr_tail.empty()) out += "<pre class=\"stderr\">" + h(c.stderr_tail) + "</pre>";
      out += "</td></tr>\n";
    }
    out += "</table>\n";
  }
  if (!s.notes.empty()) {
    out += "<ul class=\"notes\">";
    for (const auto& n : s.notes) out += "<li>" + h(n) + "</li>";
    out += "</ul>\n";
  }
  return out + "</div>\n";
}

std::string steps(const run_report& r) {
  std::string out = "<section id=\"steps\"><h2>Steps, SQL and commands</h2>\n";
  for (const auto* s : r.steps()) out += step_detail(*s);
  return out + "</section>\n";
}

std::string incidents(const run_report& r) {
  std::string out = "<section id=\"incidents\"><h2>Incidents and notifications</h2>\n";
  if (r.incidents.empty()) out += "<p class=\"muted\">No incident was opened by this run.</p>\n";
  for (const auto& i : r.incidents) {
    out += "<h3>incident " + h(i.id) + " — " + h(i.state) + ", level " + std::to_string(i.level) + ", " + h(i.severity) + "</h3>\n<p>" +
           h(i.summary) + "</p>\n<table class=\"grid\"><tr><th>time</th><th>event</th><th>detail</th></tr>\n";
    for (const auto& e : i.events) out += "<tr><td>" + h(e.ts) + "</td><td>" + h(e.event) + "</td><td>" + h(e.detail) + "</td></tr>\n";
    out += "</table>\n";
  }
  if (r.notifications.empty()) {
    out += "<p class=\"muted\">No notifications were sent.</p>\n";
  } else {
    out += "<table class=\"grid notifications\"><tr><th>time</th><th>outcome</th><th>channel</th><th>severity</th><th>action</th><th>incident</th><th>detail</th></tr>\n";
    for (const auto& n : r.notifications)
      out += "<tr><td>" + h(n.ts) + "</td><td>" + h(n.outcome) + "</td><td>" + h(n.channel) + (n.type.empty() ? "" : " (" + h(n.type) + ")") +
             "</td><td>" + h(n.severity) + "</td><td>" + h(n.action) + "</td><td>" + h(n.incident) +
             (n.level ? " level " + std::to_string(n.level) : "") + "</td><td>" + h(n.status) + (n.reason.empty() ? "" : " " + h(n.reason)) + "</td></tr>\n";
    out += "</table>\n";
  }
  return out + "</section>\n";
}

std::string chain(const run_report& r) {
  std::string out = "<section id=\"audit\"><h2>Audit chain</h2>\n<p>";
  if (r.chain.ok)
    out += "<span class=\"ok\">The hash chain of " + h(r.audit_file.string()) + " is intact</span>: " + std::to_string(r.chain.records) +
           " records, last hash <code>" + h(r.chain.last_hash) + "</code>.";
  else
    out += "<span class=\"bad\">The hash chain of " + h(r.audit_file.string()) + " is BROKEN</span> at the record on line " +
           std::to_string(r.chain.bad_line) + ": " + h(r.chain.problem) + " (" + std::to_string(r.chain.records) +
           " records before it are intact). This report may not show what happened.";
  return out + "</p></section>\n";
}

}  // namespace

std::string render_html(const run_report& r) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
                    h("runbook report: " + r.runbook + " " + r.run_id + " (" + r.status + ")") + "</title>\n<style>" + k_style +
                    "</style>\n</head>\n<body>\n";
  out += header(r) + timeline(r) + watches(r) + steps(r) + incidents(r) + chain(r);
  out += "<footer>runbook " + h(RUNBOOK_VERSION) + " · report of run " + h(r.run_id) + " from " + h(r.audit_file.string()) + "</footer>\n";
  return out + "</body>\n</html>\n";
}

}  // namespace rb::report
