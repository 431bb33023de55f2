// Dry run: what a run would do, printed without running any runbook code or writing the audit log.
#include "engine/run/executor.hpp"
#include "engine/trigger/watch.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/text.hpp"

namespace rb::run {
namespace {

/// "would watch 'after deploy' every 30s for 24h: 4 metrics (a, b, c, d), triggers 'x' → rollback, ..."
std::string watch_line(const trigger::watch_def& w) {
  std::vector<std::string> names, triggers;
  for (const auto& m : w.metrics) names.push_back(m.name);
  for (const auto& t : w.triggers) triggers.push_back("'" + t.name + "' → " + t.act.describe());
  return "would watch '" + w.name + "' every " + trigger::describe_every(w) + " for " + trigger::describe_lasting(w) + ": " +
         std::to_string(w.metrics.size()) + " metrics (" + join(names, ", ") + "), triggers in order " +
         join(triggers, "; ");
}

}  // namespace

void print_dry_run(const runbook_def& book, const run_options& opts, reporter& out) {
  out.run_started(book, "", false, true);
  auto guards = [&](const std::vector<guard_def>& g, const std::string& what) {
    if (!g.empty())
      out.message("would ask " + std::to_string(g.size()) + (g.size() == 1 ? " guard" : " guards") +
                  " first; a no skips " + what);
  };
  guards(book.guards, "the run");
  std::size_t index = 0, phase_no = 0, total = book.step_count();
  for (const auto& phase : book.phases) {
    out.phase_started(phase, ++phase_no, book.phases.size());
    guards(phase.guards, "the phase");
    if (phase.watch) out.message(watch_line(*phase.watch));
    for (const auto& step : phase.steps) {
      ++index;
      std::string line = "[" + std::to_string(index) + "/" + std::to_string(total) + "] would run '" + step.name + "'";
      std::vector<std::string> notes;
      if (step.has_when) notes.push_back("if its `when` allows");
      if (step.confirm)
        notes.push_back(std::string(opts.yes ? "confirmed by --yes: " : "asks to confirm: ") + *step.confirm +
                        (step.skip_on_decline && !opts.yes ? " (skipped if declined)" : ""));
      if (step.retry.attempts > 1)
        notes.push_back("up to " + std::to_string(step.retry.attempts) + " attempts");
      milliseconds limit = step.timeout ? *step.timeout : phase.timeout ? *phase.timeout : book.timeout;
      notes.push_back("time limit " + format_duration(limit));
      if (step.has_verify) notes.push_back("then verify");
      if (step.has_rollback) notes.push_back("has a rollback");
      line += " (" + join(notes, ", ") + ")";
      out.message(line);
    }
  }
}

}  // namespace rb::run
