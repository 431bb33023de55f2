// Progress output of a run.
#include "engine/run/reporter.hpp"

#include <cctype>

#include "engine/trigger/watch.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/term.hpp"

namespace rb::run {
namespace {
constexpr const char* k_green = term::sgr::green;
constexpr const char* k_red = term::sgr::red;
constexpr const char* k_yellow = term::sgr::yellow;
constexpr const char* k_dim = term::sgr::dim;
constexpr const char* k_bold = term::sgr::bold;

bool is_failure(std::string_view status) { return status != "succeeded" && status != "skipped"; }

/// SQL on one line: runs of whitespace folded to one space, cut at `max` characters.
std::string one_line_sql(std::string_view sql, std::size_t max = 200) {
  std::string text;
  for (char c : sql) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!text.empty() && text.back() != ' ') text += ' ';
    } else {
      text += c;
    }
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  if (text.size() > max) text = text.substr(0, max - 3) + "...";
  return text;
}

/// An argv as a shell would take it back: words with spaces or quotes in single quotes.
std::string quoted_argv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`*?;&|<>()") == std::string::npos;
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

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
  o.tty = term::is_terminal(fd);
  o.color = term::use_color(fd);
  return o;
}

std::string reporter::paint(std::string_view text, const char* code) const {
  return term::paint(m_opts.color, text, code);
}

std::string reporter::step_line() const {
  return "  [" + std::to_string(m_index) + "/" + std::to_string(m_total) + "] " + m_step + " " + paint("…", k_dim);
}

std::string reporter::elapsed() const {
  auto d = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - m_start);
  return format_duration(d);
}

void reporter::close_line() {
  m_watch_lines = 0;  // a watch's live block stays above what is printed now
  if (m_progress_open) {  // a progress line gives way to what is printed now
    m_out << term::clear_line;
    m_progress_open = false;
  }
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
  m_watch_samples = 0;
  std::string what = phase.watch ? "watch " + phase.name + " " + watch_plan(*phase.watch) : "phase " + phase.name;
  m_out << paint(what, k_bold) << paint(" (" + std::to_string(index) + "/" + std::to_string(count) + ")", k_dim) << "\n";
}

void reporter::step_started(const step_def& step, std::size_t index, std::size_t total) {
  m_index = index;
  m_total = total;
  m_step = step.name;
  if (m_opts.quiet || !m_opts.tty) return;
  close_line();
  m_out << step_line() << std::flush;
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
  if (m_opts.quiet && !is_failure(status)) return;
  if (m_opts.tty && m_line_open) m_out << term::clear_line;
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
  if (m_opts.quiet && !err) return;
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

void reporter::statement(std::string_view sql, long long rows, milliseconds took, std::string_view sqlstate) {
  if (!m_opts.verbose) return;
  close_line();
  m_out << "    " << paint("sql", k_dim) << " " << secrets::redact(one_line_sql(sql)) << " "
        << paint("(" + std::to_string(rows) + (rows == 1 ? " row, " : " rows, ") + format_duration(took) +
                     (sqlstate.empty() ? "" : ", SQLSTATE " + std::string(sqlstate)) + ")",
                 sqlstate.empty() ? k_dim : k_red)
        << "\n";
  m_out.flush();
}

void reporter::command_started(const std::vector<std::string>& argv) {
  if (m_opts.verbose) {
    close_line();
    std::vector<std::string> shown;
    for (const auto& a : argv) shown.push_back(secrets::redact(a));
    m_out << "    " << paint("$", k_dim) << " " << quoted_argv(shown) << "\n";
    m_out.flush();
  }
  if (!argv.empty()) {
    std::string name = argv[0].substr(argv[0].find_last_of('/') + 1);
    progress(name);
  }
}

void reporter::command_finished() { progress(""); }

void reporter::progress(std::string_view what) {
  if (!shows_progress()) return;
  std::string text = secrets::redact(std::string(what));
  if (m_line_open) {  // on the step's own line: "  [2/5] backup … pg_dump (3.1s, 14.2 MB written)"
    m_out << term::clear_line << step_line() << (text.empty() ? "" : " " + paint(text, k_dim)) << std::flush;
    return;
  }
  if (text.empty()) {
    if (m_progress_open) m_out << term::clear_line << std::flush;
    m_progress_open = false;
    return;
  }
  m_watch_lines = 0;  // a watch's block, if any, stays above
  m_out << term::clear_line << "  " << paint(text, k_dim) << std::flush;
  m_progress_open = true;
}

void reporter::run_finished(std::string_view status, milliseconds took, const std::string& run_id,
                            const std::vector<std::string>& failed) {
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
