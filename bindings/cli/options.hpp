// What every `runbook` command shares: its option parser, --param, --state-dir, the database
// options, loading a runbook by name, and JSON output.
#pragma once

#include <cxxopts.hpp>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bindings/sandbox.hpp"
#include "engine/run/model.hpp"
#include "engine/run/reporter.hpp"
#include "engine/run/session.hpp"

namespace rb::cli {

using json = nlohmann::json;

/// Takes the global --color=auto|always|never (or --color WHEN) out of `args`, wherever it stands
/// (before `--`), and sets the process's colour choice (term::set_color_mode). Every command
/// accepts it; a bad value is rb::error(usage).
void take_color_option(std::vector<std::string>& args);

/// Takes every --param/-p value out of `args` (cxxopts would split them at commas).
std::vector<std::string> take_params(std::vector<std::string>& args);

/// A cxxopts parser for one command, with the options every command shares (--help,
/// --state-dir). Parse errors are rb::error(usage) that point at the command's --help.
struct command_parser {
  cxxopts::Options options;
  std::vector<std::string> args;

  command_parser(const std::string& name, const std::string& help, std::vector<std::string> a);
  cxxopts::ParseResult parse();
};

std::optional<std::string> opt_string(const cxxopts::ParseResult& r, const char* name);

/// The audit log file: --state-dir, else the default state directory.
std::filesystem::path audit_file(const cxxopts::ParseResult& r);

/// -q/--quiet and -v/--verbose, for the commands that run a runbook (run, resume, rollback, rehearse).
void add_output_options(cxxopts::Options& o);
/// How the run's progress is written to `fd`: terminal and colour as detected, --quiet and
/// --verbose as given (both at once is rb::error(usage)).
run::reporter_options output_options(const cxxopts::ParseResult& r, int fd);

/// --target, --dsn, --config, --sandbox, --keep-sandbox (run).
void add_target_options(cxxopts::Options& o);
/// The database the options name (--target, --dsn, --sandbox, --keep-sandbox, where declared).
run::database_choice database_choice(const cxxopts::ParseResult& r);
/// The --config file, when given.
std::optional<std::filesystem::path> config_file(const cxxopts::ParseResult& r);

/// The `lib` directories of the runbook search path (for require).
std::vector<std::filesystem::path> lib_dirs(const std::vector<std::filesystem::path>& dirs);

/// Resolves NAME (or a path to a .lua file) on the search path `dirs` and loads it.
run::runbook_def load_named(lua::sandbox& sb, const std::vector<std::filesystem::path>& dirs, const std::string& name);

/// Every --json output goes through here: secrets are redacted in values and keys (before
/// JSON escaping, which could otherwise hide one from the redacting stdout).
void print_json(json value, int indent = -1);

/// `s` padded with spaces to width `w` (two spaces after it when it is as wide or wider).
std::string pad(const std::string& s, std::size_t w);

}  // namespace rb::cli
