// Progress output of a watch: a live block per sample on a terminal, plain lines otherwise.
#include "engine/run/reporter.hpp"

#include <cmath>

#include "engine/trigger/watch.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/term.hpp"

namespace rb::run {
namespace {

/// "investigating 'slow' (4m of 15m)" or "'degraded' holding for 5m of 30m", or "".
std::string closest(const trigger::watch_def& w, const json& state, milliseconds elapsed) {
  std::string best;
  double best_share = -1;
  for (const auto& t : w.triggers) {
    auto it = state.find(t.name);
    if (it == state.end() || !it->is_object()) continue;
    if (it->contains("investigating_since_ms")) {
      const trigger::action* a = &t.act;
      for (int d = 0; d < it->value("depth", 0) && a->then; ++d) a = a->then.get();
      milliseconds since(elapsed.count() - (*it)["investigating_since_ms"].get<long long>());
      return "investigating '" + t.name + "' (" + format_duration(since) + " of " + format_duration(a->window) + ")";
    }
    if (it->contains("holding_since_ms") && t.sustained && t.sustained->count() > 0) {
      milliseconds since(elapsed.count() - (*it)["holding_since_ms"].get<long long>());
      double share = static_cast<double>(since.count()) / static_cast<double>(t.sustained->count());
      if (share > best_share) {
        best_share = share;
        best = "'" + t.name + "' holding " + format_duration(since) + " of " + format_duration(*t.sustained);
      }
    }
  }
  return best;
}

std::string value_text(const trigger::sample& s, const std::string& name) {
  auto it = s.find(name);
  if (it == s.end()) return "unread";  // the read failed (its error is in the sample record)
  if (std::holds_alternative<std::monostate>(it->second)) return "null";  // read: SQL NULL
  return trigger::to_string(it->second);
}

}  // namespace

void reporter::watch_sample(const trigger::watch_def& w, const trigger::sample& s, milliseconds elapsed,
                            const json& state) {
  if (m_opts.quiet) return;
  ++m_watch_samples;
  milliseconds left = w.lasting > elapsed ? w.lasting - elapsed : milliseconds(0);
  std::string near = closest(w, state, elapsed);
  if (!m_opts.tty) {
    std::string line = "  " + format_duration(elapsed) + ":";
    for (const auto& m : w.metrics) line += " " + m.name + "=" + value_text(s, m.name);
    if (!near.empty()) line += " — " + near;
    m_out << secrets::redact(line) << "\n";
    m_out.flush();
    return;
  }
  if (m_line_open) {
    m_out << "\n";
    m_line_open = false;
  }
  if (m_progress_open) {
    m_out << term::clear_line;
    m_progress_open = false;
  }
  m_out << term::cursor_up(m_watch_lines);  // back to the top of the block
  std::string head = "  " + format_duration(elapsed) + " of " + format_duration(w.lasting) + ", " +
                     format_duration(left) + " left, " + std::to_string(m_watch_samples) +
                     (m_watch_samples == 1 ? " sample" : " samples");
  if (!near.empty()) head += " · closest: " + near;
  m_out << term::clear_line << paint(secrets::redact(head), term::sgr::dim) << "\n";
  for (const auto& m : w.metrics) {
    std::string v = value_text(s, m.name);
    std::string trend = " ";
    auto it = s.find(m.name);
    const double* d = it == s.end() ? nullptr : std::get_if<double>(&it->second);
    if (d) {
      auto last = m_watch_last.find(m.name);
      if (last != m_watch_last.end()) trend = *d > last->second ? "↑" : *d < last->second ? "↓" : "→";
      m_watch_last[m.name] = *d;
    }
    std::string readers;
    for (const auto& t : w.triggers) {
      bool reads = false;
      if (t.when.expr)
        for (const auto& n : t.when.expr->names()) reads = reads || n == m.name;
      if (reads) readers += (readers.empty() ? "" : ", ") + t.name;
    }
    std::string line = "    " + m.name + std::string(m.name.size() < 22 ? 22 - m.name.size() : 1, ' ') + v + " " + trend;
    if (!readers.empty()) line += "   (" + readers + ")";
    m_out << term::clear_line << secrets::redact(line) << "\n";
  }
  m_watch_lines = w.metrics.size() + 1;
  m_out.flush();
}

void reporter::watch_finished(const trigger::watch_def& w, const trigger::watch_result& r) {
  m_watch_samples = 0;
  if (m_opts.quiet && r.end == trigger::watch_end::completed) return;  // a decision is news even then
  close_line();
  std::string line = "watch " + w.name + ": " + std::string(trigger::to_string(r.end)) + " after " +
                     std::to_string(r.samples) + (r.samples == 1 ? " sample" : " samples");
  if (!r.trigger.empty()) line += ", trigger '" + r.trigger + "': " + r.reason;
  m_out << "  " << paint(secrets::redact(line), r.end == trigger::watch_end::completed ? term::sgr::green : term::sgr::red) << "\n";
  m_out.flush();
}

}  // namespace rb::run
