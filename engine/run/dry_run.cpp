// Dry run: what a run would do, printed without running any runbook code or writing the audit log.
#include "engine/run/executor.hpp"
#include "engine/run/watch_phase.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/text.hpp"

namespace rb::run {

void print_dry_run(const runbook_def& book, const run_options& opts, reporter& out) {
  out.run_started(book, "", false, true);
  std::size_t index = 0, phase_no = 0, total = book.step_count();
  for (const auto& phase : book.phases) {
    if (phase.watch) {
      phase_def shown;  // its every / lasting as the params set them
      shown.name = phase.name;
      shown.watch = std::make_shared<const trigger::watch_def>(watch_for_run(*phase.watch, opts.params));
      out.phase_started(shown, ++phase_no, book.phases.size());
    } else {
      out.phase_started(phase, ++phase_no, book.phases.size());
    }
    for (const auto& step : phase.steps) {
      ++index;
      std::string line = "[" + std::to_string(index) + "/" + std::to_string(total) + "] would run '" + step.name + "'";
      std::vector<std::string> notes;
      if (step.has_when) notes.push_back("if its `when` allows");
      if (step.confirm) notes.push_back(std::string(opts.yes ? "confirmed by --yes: " : "asks to confirm: ") + *step.confirm);
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
