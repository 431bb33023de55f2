// The report's SVG drawings: the run's timeline and each watch metric's sparkline.
#include "engine/report/report_svg.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "engine/util/duration.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::report {
namespace {

constexpr double k_width = 1100;
constexpr double k_label = 270;   // the timeline's label column
constexpr double k_right = 20;
constexpr double k_row = 22;
constexpr double k_axis = 28;

std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

/// A label that fits the label column: long names end in "…" (the bar's title has them whole).
std::string short_label(const std::string& s, std::size_t max) {
  std::string v = valid_utf8(s);
  if (v.size() <= max) return v;
  std::size_t cut = max - 1;
  while (cut > 0 && (static_cast<unsigned char>(v[cut]) & 0xC0) == 0x80) --cut;
  return v.substr(0, cut) + "…";
}

/// A tick step of 1, 2 or 5 times a power of ten giving at most about `ticks` ticks over `span`.
double tick_step(double span, int ticks) {
  double raw = span / ticks;
  double p = std::pow(10.0, std::floor(std::log10(std::max(raw, 1e-9))));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw) return m * p;
  return 10 * p;
}

struct time_axis {
  double left, width;
  long long span;
  double x(long long ms) const { return left + width * static_cast<double>(std::clamp(ms, 0LL, span)) / static_cast<double>(span); }
};

/// Tick marks and labels along the top of a drawing, down to `bottom`.
std::string axis_svg(const time_axis& a, double top, double bottom) {
  std::string out = "<g class=\"axis\">";
  out += "<line x1=\"" + px(a.left) + "\" y1=\"" + px(top) + "\" x2=\"" + px(a.left + a.width) + "\" y2=\"" + px(top) + "\"/>";
  double step = tick_step(static_cast<double>(a.span), 10);
  for (double t = 0; t <= static_cast<double>(a.span) + 1e-9; t += step) {
    double x = a.x(static_cast<long long>(t));
    out += "<line class=\"tick\" x1=\"" + px(x) + "\" y1=\"" + px(top) + "\" x2=\"" + px(x) + "\" y2=\"" + px(bottom) + "\"/>";
    out += "<text x=\"" + px(x) + "\" y=\"" + px(top - 6) + "\" text-anchor=\"middle\">" +
           html_text(duration_text(static_cast<long long>(t))) + "</text>";
  }
  return out + "</g>";
}

/// A bar from `from` to `to` (to < 0: still open at the end of the axis), at least 2 px wide.
std::string bar(const time_axis& a, const std::string& cls, long long from, long long to, double y, const std::string& title) {
  double x0 = a.x(std::max(0LL, from));
  double x1 = a.x(to < 0 ? a.span : to);
  double w = std::max(2.0, x1 - x0);
  return "<rect class=\"" + cls + "\" x=\"" + px(x0) + "\" y=\"" + px(y + 4) + "\" width=\"" + px(w) + "\" height=\"" +
         px(k_row - 8) + "\"><title>" + html_text(title) + "</title></rect>";
}

std::string label(double x, double y, const std::string& cls, const std::string& text, std::size_t max) {
  return "<text class=\"" + cls + "\" x=\"" + px(x) + "\" y=\"" + px(y + k_row / 2 + 4) + "\">" +
         html_text(short_label(text, max)) + "<title>" + html_text(text) + "</title></text>";
}

std::string diamond(const std::string& cls, double x, double y, double r, const std::string& title) {
  return "<polygon class=\"" + cls + "\" points=\"" + px(x) + "," + px(y - r) + " " + px(x + r) + "," + px(y) + " " + px(x) +
         "," + px(y + r) + " " + px(x - r) + "," + px(y) + "\"><title>" + html_text(title) + "</title></polygon>";
}

std::string span_text(long long from, long long to) {
  return to < 0 ? "from +" + duration_text(from) + ", unfinished"
                : "+" + duration_text(from) + " to +" + duration_text(to) + " (" + duration_text(to - from) + ")";
}

std::string decision_title(const watch_decision& d) {
  return "decision: " + (d.trigger.empty() ? std::string("watch") : "trigger '" + d.trigger + "'") + " " + d.decision +
         (d.condition.empty() ? "" : " (" + d.condition + ")") + (d.action.empty() ? "" : " → " + d.action) + " at +" +
         duration_text(d.elapsed_ms) + " of the watch";
}

}  // namespace

std::string html_text(std::string_view text) {
  std::string in = secrets::redact(valid_utf8(text));
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string duration_text(long long ms) { return format_duration(std::chrono::milliseconds(ms)); }

std::string timeline_svg(const run_report& r) {
  long long span = std::max(1LL, r.duration_ms);
  for (const auto& p : r.phases) {
    span = std::max(span, p.end_ms);
    for (const auto& s : p.steps) {
      span = std::max({span, s.end_ms, s.start_ms});
      for (const auto& rb : s.rollbacks) span = std::max({span, rb.start_ms, rb.end_ms});
    }
  }
  for (const auto& w : r.watches) span = std::max(span, w.end_ms);
  const time_axis a{k_label, k_width - k_label - k_right, span};

  std::string rows;
  double y = k_axis;
  for (const auto& p : r.phases) {
    std::string cls = p.is_watch ? "phase watch" : "phase";
    if (p.status == "failed") cls += " failed";
    rows += label(8, y, "phase-label", (p.is_watch ? "watch " : "phase ") + p.name, 36);
    if (p.start_ms >= 0)
      rows += bar(a, cls, p.start_ms, p.end_ms,
                  y, "phase '" + p.name + "': " + (p.status.empty() ? "unfinished" : p.status) +
                         (p.transaction_outcome.empty() ? "" : ", transaction " + p.transaction_outcome) + ", " +
                         span_text(p.start_ms, p.end_ms));
    for (const auto& w : r.watches) {
      if (w.phase != p.name) continue;
      for (const auto& d : w.decisions) rows += diamond("decision", a.x(w.start_ms + d.elapsed_ms), y + k_row / 2, 7, decision_title(d));
    }
    y += k_row;
    for (const auto& s : p.steps) {
      rows += label(22, y, "step-label", s.name, 34);
      for (const auto& at : s.attempts) {
        std::string c = at.status == "retried" ? "step retry" : at.status == "failed" ? "step failed" : "step";
        std::string t = "step '" + s.name + "' attempt " + std::to_string(at.number) + ": " +
                        (at.status.empty() ? "unfinished" : at.status) + ", " + span_text(at.start_ms, at.end_ms) +
                        (at.error.empty() ? "" : ": " + at.error) +
                        (at.delay_ms > 0 ? "; retried after " + duration_text(at.delay_ms) : "");
        rows += bar(a, c, at.start_ms, at.end_ms, y, t);
      }
      y += k_row;
    }
  }
  // Rollback handlers, in the order they ran (reverse order of the steps: saga compensation).
  std::vector<std::pair<const step_report*, const rollback_run*>> undo;
  for (const auto* s : r.steps())
    for (const auto& rb : s->rollbacks) undo.emplace_back(s, &rb);
  std::stable_sort(undo.begin(), undo.end(), [](const auto& x, const auto& z) { return x.second->start_ms < z.second->start_ms; });
  if (!undo.empty()) {
    rows += label(8, y, "phase-label", "rollback", 36);
    y += k_row;
    for (const auto& [s, rb] : undo) {
      rows += label(22, y, "step-label", "undo " + s->name, 34);
      rows += bar(a, rb->status == "failed" ? "rollback failed" : "rollback", rb->start_ms, rb->end_ms, y,
                  "rollback handler of '" + s->phase + "/" + s->name + "': " + (rb->status.empty() ? "unfinished" : rb->status) +
                      ", " + span_text(rb->start_ms, rb->end_ms) + (rb->error.empty() ? "" : ": " + rb->error));
      y += k_row;
    }
  }
  double height = y + 8;
  return "<svg class=\"timeline\" width=\"" + px(k_width) + "\" height=\"" + px(height) +
         "\" viewBox=\"0 0 " + px(k_width) + " " + px(height) + "\" role=\"img\" aria-label=\"timeline of run " +
         html_text(r.run_id) + "\">" + axis_svg(a, k_axis - 2, height - 4) + rows + "</svg>";
}

std::string sparkline_svg(const watch_report& w, const metric_series& m) {
  constexpr double height = 150, left = 70, top = 30, bottom = 22;
  long long span = std::max(1LL, w.end_ms >= 0 ? w.end_ms - w.start_ms : 0);
  double lo = 0, hi = 0;
  bool any = false;
  auto see = [&](double v) {
    if (!std::isfinite(v)) return;
    lo = any ? std::min(lo, v) : v;
    hi = any ? std::max(hi, v) : v;
    any = true;
  };
  for (const auto& [t, v] : m.points) span = std::max(span, t), see(v);
  for (const auto& b : m.bands) span = std::max(span, b.to_ms), see(b.min), see(b.max);
  for (const auto& th : m.thresholds) see(th.value);
  for (const auto& d : w.decisions) span = std::max(span, d.elapsed_ms);
  if (!any) lo = 0, hi = 1;
  double pad = hi > lo ? (hi - lo) * 0.1 : std::max(1.0, std::fabs(hi) * 0.1);
  lo -= pad;
  hi += pad;
  const time_axis a{left, k_width - left - k_right, span};
  const double plot_h = height - top - bottom;
  auto yv = [&](double v) { return top + plot_h * (1 - (v - lo) / (hi - lo)); };

  std::string out = "<svg class=\"sparkline\" width=\"" + px(k_width) + "\" height=\"" +
                    px(height) + "\" viewBox=\"0 0 " + px(k_width) + " " + px(height) + "\" role=\"img\" aria-label=\"metric " +
                    html_text(m.name) + "\">";
  out += axis_svg(a, top - 4, height - bottom);
  out += "<rect class=\"plot\" x=\"" + px(left) + "\" y=\"" + px(top) + "\" width=\"" + px(a.width) + "\" height=\"" + px(plot_h) + "\"/>";
  out += "<text class=\"y-label\" x=\"" + px(left - 6) + "\" y=\"" + px(yv(hi - pad) + 4) + "\" text-anchor=\"end\">" + html_text(number(hi - pad)) + "</text>";
  out += "<text class=\"y-label\" x=\"" + px(left - 6) + "\" y=\"" + px(yv(lo + pad) + 4) + "\" text-anchor=\"end\">" + html_text(number(lo + pad)) + "</text>";
  out += "<text class=\"metric-name\" x=\"" + px(left + 4) + "\" y=\"" + px(height - 6) + "\">" + html_text(m.name) + "</text>";
  for (const auto& b : m.bands)
    out += "<rect class=\"band\" x=\"" + px(a.x(b.from_ms)) + "\" y=\"" + px(yv(b.max)) + "\" width=\"" +
           px(std::max(2.0, a.x(b.to_ms) - a.x(b.from_ms))) + "\" height=\"" + px(std::max(1.0, yv(b.min) - yv(b.max))) +
           "\"><title>" + html_text("quiet samples +" + duration_text(b.from_ms) + " to +" + duration_text(b.to_ms) + ": min " +
                                    number(b.min) + ", max " + number(b.max)) + "</title></rect>";
  for (const auto& th : m.thresholds) {
    double ty = yv(th.value);
    std::string text = th.trigger + ": " + m.name + " " + th.op + " " + number(th.value);
    out += "<line class=\"threshold\" x1=\"" + px(left) + "\" y1=\"" + px(ty) + "\" x2=\"" + px(left + a.width) + "\" y2=\"" +
           px(ty) + "\"><title>" + html_text("threshold of trigger " + text) + "</title></line>";
    out += "<text class=\"threshold-label\" x=\"" + px(left + a.width - 4) + "\" y=\"" + px(ty - 4) + "\" text-anchor=\"end\">" +
           html_text(text) + "</text>";
  }
  std::vector<std::pair<long long, double>> pts = m.points;
  std::stable_sort(pts.begin(), pts.end(), [](const auto& x, const auto& z) { return x.first < z.first; });
  std::string coords;
  for (const auto& [t, v] : pts) coords += (coords.empty() ? "" : " ") + px(a.x(t)) + "," + px(yv(v));
  out += "<polyline class=\"metric\" points=\"" + coords + "\"/>";
  for (const auto& [t, v] : pts)
    out += "<circle class=\"sample\" cx=\"" + px(a.x(t)) + "\" cy=\"" + px(yv(v)) + "\" r=\"2.5\"><title>" +
           html_text(m.name + " = " + number(v) + " at +" + duration_text(t)) + "</title></circle>";
  for (const auto& d : w.decisions) {
    double x = a.x(d.elapsed_ms);
    out += "<line class=\"decision\" x1=\"" + px(x) + "\" y1=\"" + px(top) + "\" x2=\"" + px(x) + "\" y2=\"" + px(top + plot_h) + "\"/>";
    out += diamond("decision", x, top, 6, decision_title(d));
  }
  return out + "</svg>";
}

}  // namespace rb::report
