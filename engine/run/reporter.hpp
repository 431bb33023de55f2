// Progress output of a run: live lines on a terminal, plain lines otherwise.
#pragma once

#include <chrono>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "engine/run/model.hpp"
#include "engine/trigger/expression.hpp"
#include "engine/util/secrets.hpp"

namespace rb::trigger {
struct watch_def;
struct watch_result;
}

namespace rb::run {

struct reporter_options {
  bool tty = false;      ///< a terminal: rewrite the current step's line in place, show progress
  bool color = false;    ///< ANSI colours (term::use_color: --color, NO_COLOR)
  bool quiet = false;    ///< --quiet: only errors (failed steps, failed rollbacks) and the outcome line
  bool verbose = false;  ///< --verbose: also each SQL statement and each command as it runs
};

/// Writes what a person watching a run wants to see: each phase, each step with "i of N",
/// its outcome and time, retries, rollbacks, and messages from the runbook. Everything it
/// writes goes through redaction: no registered secret reaches `out`.
class reporter {
 public:
  reporter(std::ostream& out, reporter_options opts);
  /// Options for the current process writing to `fd`: terminal when it is one, colour as
  /// term::use_color decides (--color, NO_COLOR, TERM=dumb).
  static reporter_options detect(int fd);

  void run_started(const runbook_def& book, const std::string& run_id, bool resumed, bool dry_run);
  void phase_started(const phase_def& phase, std::size_t index, std::size_t count);
  void step_started(const step_def& step, std::size_t index, std::size_t total);
  void step_retry(const step_def& step, int next_attempt, milliseconds delay, const step_error& err);
  void step_finished(const step_def& step, std::string_view status, milliseconds took,
                     const step_error* err, const std::string& note);
  void rollback_started(std::string_view why);
  void rollback_step(const phase_def& phase, const step_def& step, std::string_view status,
                     const step_error* err);
  void message(std::string_view line);
  /// --verbose: one SQL statement the run executed (whitespace folded), its rows and time, and
  /// its SQLSTATE when it failed. Nothing otherwise.
  void statement(std::string_view sql, long long rows, milliseconds took, std::string_view sqlstate);
  /// A program the engine starts (shell.run, backup.dump's pg_dump, a rehearsal's clone):
  /// --verbose prints its argv; on a terminal its name stands on the progress line until
  /// command_finished().
  void command_started(const std::vector<std::string>& argv);
  void command_finished();
  /// On a terminal: `what` shown in place (after the current step's "[i/N] name …", or on a
  /// line of its own) until the next output; nothing elsewhere, nor with --quiet.
  void progress(std::string_view what);
  /// Whether progress() shows anything (a terminal, not --quiet).
  bool shows_progress() const { return m_opts.tty && !m_opts.quiet; }
  /// After each sample of a watch: on a terminal a live block (a line per metric with its
  /// value and trend, the trigger closest to acting, the time left); else one plain line.
  /// `state` is the triggers' state (trigger::tree::state()). In reporter_watch.cpp.
  void watch_sample(const trigger::watch_def& w, const trigger::sample& s, milliseconds elapsed, const json& state);
  void watch_finished(const trigger::watch_def& w, const trigger::watch_result& r);
  /// The summary line; `failed` names the steps that failed with on_error = "continue".
  void run_finished(std::string_view status, milliseconds took, const std::string& run_id,
                    const std::vector<std::string>& failed = {});

 private:
  void close_line();
  std::string paint(std::string_view text, const char* code) const;
  /// "  [i/N] step …": the current step's open line on a terminal.
  std::string step_line() const;
  std::string elapsed() const;

  secrets::redacting_buf m_buf;  ///< in front of the given stream's buffer
  std::ostream m_out;
  reporter_options m_opts;
  bool m_line_open = false;      ///< the current step's line, without its newline yet
  bool m_progress_open = false;  ///< a progress line of its own (no step line open)
  std::size_t m_index = 0, m_total = 0;
  std::string m_step;
  // a watch's live block: lines drawn (rewritten in place on a terminal), previous values
  std::size_t m_watch_lines = 0;
  std::size_t m_watch_samples = 0;
  std::map<std::string, double> m_watch_last;
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
};

}  // namespace rb::run
