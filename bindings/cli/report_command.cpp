// `runbook report RUN`: a run's report from the audit log, as one HTML page or as Markdown.
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "bindings/cli/commands.hpp"
#include "bindings/cli/options.hpp"
#include "engine/audit/log.hpp"
#include "engine/error.hpp"
#include "engine/report/run_report.hpp"
#include "engine/util/secrets.hpp"

namespace rb::cli {
namespace fs = std::filesystem;

namespace {

/// Writes `text` to `file` whole or not at all (a temporary file beside it, then rename).
void write_file(const fs::path& file, const std::string& text) {
  fs::path tmp = file;
  tmp += ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw error(error_kind::io, "unable to write the report to '" + file.string() + "'");
    }
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw error(error_kind::io, "unable to write the report to '" + file.string() + "': " + ec.message());
  }
}

}  // namespace

int cmd_report(std::vector<std::string> args) {
  command_parser p("report",
                   "A run's report from the audit log: header, timeline, SQL and commands per step, watch\n"
                   "samples and decisions, incidents, notifications and the audit chain's verification.\n"
                   "HTML is one self-contained page (no network, no script); Markdown is for a postmortem.",
                   std::move(args));
  p.options.add_options()("run", "run id (or a unique prefix)", cxxopts::value<std::string>())(
      "o,output", "write to this file instead of stdout", cxxopts::value<std::string>())(
      "format", "html or md (default: md for an -o FILE ending in .md, else html)", cxxopts::value<std::string>());
  p.options.parse_positional({"run"});
  p.options.positional_help("RUN");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  if (!r.count("run")) throw error(error_kind::usage, "report needs a run id: runbook report RUN (see 'runbook history')");
  std::optional<std::string> output = opt_string(r, "output");
  std::string format = opt_string(r, "format").value_or(output && fs::path(*output).extension() == ".md" ? "md" : "html");
  if (format == "markdown") format = "md";
  if (format != "html" && format != "md")
    throw error(error_kind::usage, "unknown report format '" + format + "': use --format html or --format md");

  auto report = report::build(audit_file(r), r["run"].as<std::string>(), audit::key_from_env());
  std::string text = format == "html" ? report::render_html(report) : report::render_md(report);
  text = secrets::redact(std::move(text));
  if (!output) {
    std::cout << text;
    return 0;
  }
  write_file(*output, text);
  std::cerr << "report of run " << report.run_id << " (" << report.status << ") written to " << *output << "\n";
  return 0;
}

}  // namespace rb::cli
