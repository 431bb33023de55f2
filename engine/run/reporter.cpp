// Progress output of a run.
#include "engine/run/reporter.hpp"

#include <unistd.h>

#include <cstdlib>

#include "engine/trigger/watch.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/secrets.hpp"

namespace rb::run {
namespace {
constexpr const char* k_green = "32";
constexpr const char* k_red = "31";
constexpr const char* k_yellow = "33";
constexpr const char* k_dim = "2";
constexpr const char* k_bold = "1";

const char* status_color(std::string_view status) {
  if (status == "succeeded") return k_green;
  if (status == "skipped" || status == "continued" || status == "succeeded_with_failures") return k_yellow;
  return k_red;
}
std::string watch_plan(const trigger::watch_def& w) {
  // every / lasting set by a function of the run are known once the watch starts (it says them).
  std::string timing = w.every_fn || w.lasting_fn ? "timing set by the run"
                                                  : "every " + format_duration(w.every) + " for " + format_duration(w.lasting);
  return "(" + timing + ", " +
         std::to_string(w.metrics.size()) + " metrics, " + std::to_string(w.triggers.size()) + " triggers)";
}
}  // namespace

reporter::reporter(std::ostream& out, reporter_options opts) : m_buf(out.rdbuf()), m_out(&m_buf), m_opts(opts) {}

reporter_options reporter::detect(int fd) {
  reporter_options o;
  o.tty = ::isatty(fd) == 1;
  const char* no_color = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  o.color = o.tty && !(no_color && *no_color) && !(term && std::string_view(term) == "dumb");
  return o;
}

std::string reporter::paint(std::string_view text, const char* code) const {
  if (!m_opts.color) return std::string(text);
  return std::string("\033[") + code + "m" + std::string(text) + "\033[0m";
}

std::string reporter::elapsed() const {
  auto d = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - m_start);
  return format_duration(d);
}

void reporter::close_line() {
  m_watch_lines = 0;  // a watch's live block stays above what is printed now
  if (m_line_open) {
    m_out << "\n";
    m_line_open = false;
  }
}

void reporter::run_started(const runbook_def& book, const std::string& run_id, bool resumed, bool dry_run) {
  if (m_opts.quiet) return;
  m_start = std::chrono::steady_clock::now();
  m_total = book.step_count();
  m_out << paint(dry_run ? "dry run" : (resumed ? "resuming run " + run_id : "run " + run_id), k_bold)
        << ": " << book.name;
  if (!book.title.empty()) m_out << " — " << book.title;
  m_out << " (" << m_total << (m_total == 1 ? " step" : " steps") << ")\n";
}

void reporter::phase_started(const phase_def& phase, std::size_t index, std::size_t count) {
  if (m_opts.quiet) return;
  close_line();
  std::string what = phase.watch ? "watch " + phase.name + " " + watch_plan(*phase.watch) : "phase " + phase.name;
  m_out << paint(what, k_bold) << paint(" (" + std::to_string(index) + "/" + std::to_string(count) + ")", k_dim) << "\n";
}

void reporter::step_started(const step_def& step, std::size_t index, std::size_t total) {
  m_index = index;
  m_total = total;
  m_step = step.name;
  if (m_opts.quiet || !m_opts.tty) return;
  close_line();
  m_out << "  [" << index << "/" << total << "] " << step.name << " " << paint("…", k_dim) << std::flush;
  m_line_open = true;
}

void reporter::step_retry(const step_def& step, int next_attempt, milliseconds delay, const step_error& err) {
  if (m_opts.quiet) return;
  close_line();
  m_out << "    " << paint("retry", k_yellow) << " " << step.name << " attempt " << next_attempt << " in "
        << format_duration(delay) << ": " << secrets::redact(err.describe()) << "\n";
}

void reporter::step_finished(const step_def& step, std::string_view status, milliseconds took,
                             const step_error* err, const std::string& note) {
  if (m_opts.quiet) return;
  if (m_opts.tty && m_line_open) m_out << "\r\033[K";
  else close_line();
  m_line_open = false;
  m_out << "  [" << m_index << "/" << m_total << "] " << step.name << ": " << paint(status, status_color(status))
        << " " << paint("(" + format_duration(took) + (m_opts.tty ? ", elapsed " + elapsed() : "") + ")", k_dim);
  if (!note.empty()) m_out << " — " << note;
  m_out << "\n";
  if (err) m_out << "      " << paint(secrets::redact(err->describe()), k_red) << "\n";
  m_out.flush();
}

void reporter::rollback_started(std::string_view why) {
  if (m_opts.quiet) return;
  close_line();
  m_out << paint("rolling back", k_yellow) << ": " << secrets::redact(std::string(why)) << "\n";
}

void reporter::rollback_step(const phase_def& phase, const step_def& step, std::string_view status,
                             const step_error* err) {
  if (m_opts.quiet) return;
  close_line();
  m_out << "  rollback " << phase.name << "/" << step.name << ": " << paint(status, status_color(status)) << "\n";
  if (err) m_out << "      " << paint(secrets::redact(err->describe()), k_red) << "\n";
}

void reporter::message(std::string_view line) {
  if (m_opts.quiet) return;
  close_line();
  std::string text = secrets::redact(std::string(line));
  for (std::size_t at = 0; (at = text.find('\n', at)) != std::string::npos; at += 5) text.replace(at, 1, "\n    ");
  m_out << "    " << text << "\n";
  m_out.flush();
}

void reporter::run_finished(std::string_view status, milliseconds took, const std::string& run_id,
                            const std::vector<std::string>& failed) {
  if (m_opts.quiet) return;
  close_line();
  m_out << "run " << run_id << " " << paint(status, status_color(status)) << " in " << format_duration(took) << "\n";
  if (!failed.empty()) {
    m_out << "  " << failed.size() << (failed.size() == 1 ? " step" : " steps")
          << " failed and the run went on (on_error = \"continue\"):\n";
    for (const auto& f : failed) m_out << "    - " << paint(f, k_red) << "\n";
  }
  m_out.flush();
}

}  // namespace rb::run
