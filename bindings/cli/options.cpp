// What every `runbook` command shares: option parsing, --param, the database options, loading.
#include "bindings/cli/options.hpp"

#include <iostream>

#include "bindings/loader.hpp"
#include "engine/error.hpp"
#include "engine/run/catalog.hpp"
#include "engine/run/state.hpp"
#include "engine/util/json_text.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/term.hpp"

namespace rb::cli {
namespace fs = std::filesystem;

void take_color_option(std::vector<std::string>& args) {
  std::vector<std::string> rest;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      rest.insert(rest.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
      break;
    }
    if (a == "--color") {
      if (i + 1 >= args.size()) throw error(error_kind::usage, "--color needs a value: --color=auto|always|never");
      term::set_color_mode(term::parse_color_mode(args[++i]));
    } else if (a.rfind("--color=", 0) == 0) {
      term::set_color_mode(term::parse_color_mode(a.substr(8)));
    } else {
      rest.push_back(a);
    }
  }
  args = std::move(rest);
}

std::vector<std::string> take_params(std::vector<std::string>& args) {
  std::vector<std::string> params, rest;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--param" || a == "-p") {
      if (i + 1 >= args.size()) throw error(error_kind::usage, a + " needs a value: --param name=value");
      params.push_back(args[++i]);
    } else if (a.rfind("--param=", 0) == 0) {
      params.push_back(a.substr(8));
    } else {
      rest.push_back(a);
    }
  }
  args = std::move(rest);
  return params;
}

command_parser::command_parser(const std::string& name, const std::string& help, std::vector<std::string> a)
    : options("runbook " + name, help), args(std::move(a)) {
  options.add_options()("h,help", "show this help")(
      "state-dir", "directory of the audit log (default: $RUNBOOK_STATE_DIR or ~/.local/state/runbook)",
      cxxopts::value<std::string>())(
      // Taken out of argv by dispatch (take_color_option) before any command parses it: listed
      // here so that every command's --help shows it.
      "color", "colour the output: auto (on a terminal, unless NO_COLOR is set), always or never",
      cxxopts::value<std::string>());
}

cxxopts::ParseResult command_parser::parse() {
  std::vector<char*> argv;
  std::string prog = options.program();
  argv.push_back(prog.data());
  for (auto& a : args) argv.push_back(a.data());
  try {
    return options.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const cxxopts::exceptions::exception& e) {
    throw error(error_kind::usage, std::string(e.what()) + " (see '" + prog + " --help')");
  }
}

std::optional<std::string> opt_string(const cxxopts::ParseResult& r, const char* name) {
  if (r.count(name)) return r[name].as<std::string>();
  return std::nullopt;
}

fs::path audit_file(const cxxopts::ParseResult& r) {
  return run::audit_path(run::state_dir(opt_string(r, "state-dir")));
}

void add_output_options(cxxopts::Options& o) {
  o.add_options()("q,quiet", "print only errors and the final outcome line")(
      "v,verbose", "also print each SQL statement and each command as it runs");
}

run::reporter_options output_options(const cxxopts::ParseResult& r, int fd) {
  run::reporter_options o = run::reporter::detect(fd);
  o.quiet = r.count("quiet") > 0;
  o.verbose = r.count("verbose") > 0;
  if (o.quiet && o.verbose) throw error(error_kind::usage, "--quiet and --verbose contradict each other: pass one");
  return o;
}

void add_target_options(cxxopts::Options& o) {
  o.add_options()("target", "database target from the config file", cxxopts::value<std::string>())(
      "dsn", "connect to this DSN instead of a configured target (also: RUNBOOK_DSN)", cxxopts::value<std::string>())(
      "config", "config file (default: ./runbook.lua)", cxxopts::value<std::string>())(
      "sandbox", "run against a throwaway local PostgreSQL seeded from the runbook's fixture")(
      "keep-sandbox", "with --sandbox: leave the sandbox running afterwards and print how to connect");
}

run::database_choice database_choice(const cxxopts::ParseResult& r) {
  run::database_choice c;
  c.target = opt_string(r, "target");
  c.dsn = opt_string(r, "dsn");
  c.sandbox = r.count("sandbox") > 0;  // 0 where the command does not declare it
  c.keep_sandbox = r.count("keep-sandbox") > 0;
  return c;
}

std::optional<fs::path> config_file(const cxxopts::ParseResult& r) {
  if (r.count("config")) return fs::path(r["config"].as<std::string>());
  return std::nullopt;
}

std::vector<fs::path> lib_dirs(const std::vector<fs::path>& dirs) {
  std::vector<fs::path> out;
  for (const auto& d : dirs) out.push_back(d / "lib");
  return out;
}

run::runbook_def load_named(lua::sandbox& sb, const std::vector<fs::path>& dirs, const std::string& name) {
  std::error_code ec;
  if (name.size() > 4 && name.substr(name.size() - 4) == ".lua" && fs::is_regular_file(name, ec))
    return lua::load_runbook(sb, name, "");
  fs::path file = run::require_runbook(dirs, name);
  return lua::load_runbook(sb, file, name);
}

void print_json(json value, int indent) {
  secrets::redact(value);
  std::cout << json_text(value, indent) << "\n";
}

std::string pad(const std::string& s, std::size_t w) {
  return s.size() >= w ? s + "  " : s + std::string(w - s.size(), ' ');
}

}  // namespace rb::cli
