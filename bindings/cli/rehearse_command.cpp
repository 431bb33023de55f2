// `runbook rehearse`: parse the options, load the runbook and the config (Lua), hand them with
// a Lua fingerprinter to the engine's rehearsal, and print its verdict.
#include <unistd.h>

#include <iostream>

#include "bindings/cli/commands.hpp"
#include "bindings/cli/options.hpp"
#include "bindings/config.hpp"
#include "bindings/open_all.hpp"
#include "bindings/fingerprint.hpp"
#include "engine/error.hpp"
#include "engine/run/catalog.hpp"
#include "engine/run/params.hpp"
#include "engine/run/rehearsal.hpp"
#include "engine/util/text.hpp"

namespace rb::cli {

namespace {

/// The verdict, the differences and the notes, as the operator reads them.
void print_verdict(std::ostream& progress, const run::rehearsal_result& res, const run::rehearsal_options& ro) {
  if (ro.forward_only) {
    progress << "\nwhat the runbook changes on the copy"
             << (res.diff.empty() ? ": nothing" : " (" + std::to_string(res.diff.size()) + "):") << "\n";
  } else {
    std::string what = ro.schema_only ? "the database's structure" : "the database";
    std::string verdict =
        res.forward.status == run::status::skipped
            ? "REHEARSAL NOT DONE: a guard skipped the forward run, so there was nothing to roll back"
        : !res.has_rollback ? (res.diff.empty() ? "REHEARSAL PASSED: the runbook has no rollback handlers at all, and its "
                                                "forward run changed nothing the fingerprint sees"
                                              : "REHEARSAL FAILED: the runbook has no rollback handlers at all: nothing "
                                                "undid what it changed:")
        : res.diff.empty() ? "REHEARSAL PASSED: the rollback restored " + what + " exactly"
                           : "REHEARSAL FAILED: after the rollback " + what + " differs from the original:";
    progress << "\n" << verdict << "\n";
  }
  for (const auto& line : res.diff) progress << "  - " << line << "\n";
  for (const auto& note : res.notes) progress << "note: " << note << "\n";
}

}  // namespace

int cmd_rehearse(std::vector<std::string> args) {
  std::vector<std::string> params = take_params(args);
  command_parser p("rehearse",
                   "Prove a runbook's rollback on a copy: clone the target into a sandbox PostgreSQL (or seed one "
                   "from the fixture with --sandbox), fingerprint it, run the runbook forward, run its rollback path, "
                   "fingerprint again, and report whether the rollback restored the database exactly. The "
                   "fingerprint covers every schema but PostgreSQL's own, roles and memberships, owners, privileges, "
                   "comments, extensions, publications, rules and event triggers.",
                   std::move(args));
  p.options.add_options()("p,param", "set a parameter (repeatable): --param name=value")(
      "forward-only", "only run forward on the copy and report what the migration changes")(
      "schemas", "compare only these schemas (comma-separated; default: every schema but PostgreSQL's own)",
      cxxopts::value<std::string>())(
      "schema-only", "clone the structure without the data (for databases too big to copy); rows are not compared")(
      "strict-sequences", "count sequences the run advanced as differences (by default a note: PostgreSQL never rolls a sequence back)")(
      "json", "print one JSON object with the result at the end")(
      "target", "database target to clone (from the config file)", cxxopts::value<std::string>())(
      "dsn", "database to clone (also: RUNBOOK_DSN)", cxxopts::value<std::string>())(
      "config", "config file (default: ./runbook.lua)", cxxopts::value<std::string>())(
      "sandbox", "rehearse on the runbook's fixture instead of a clone")(
      "name", "runbook name", cxxopts::value<std::string>());
  add_output_options(p.options);
  p.options.parse_positional({"name"});
  p.options.positional_help("NAME");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  if (!r.count("name")) throw error(error_kind::usage, "rehearse needs a runbook name: runbook rehearse NAME");
  run::rehearsal_options ro;
  ro.schema_only = r.count("schema-only") > 0;
  if (ro.schema_only && r.count("sandbox"))
    throw error(error_kind::usage, "--schema-only clones a target without its data; with --sandbox the fixture is loaded whole");
  ro.fingerprint.data = !ro.schema_only;
  ro.strict_sequences = r.count("strict-sequences") > 0;
  if (auto list = opt_string(r, "schemas")) {
    for (const auto& part : split(*list, ','))
      if (auto name = std::string(trim(part)); !name.empty()) ro.fingerprint.schemas.push_back(name);
    if (ro.fingerprint.schemas.empty()) throw error(error_kind::usage, "--schemas needs schema names: --schemas app,billing");
  }
  auto dirs = run::search_path();
  auto sb = lua::make_sandbox(lib_dirs(dirs));
  auto book = load_named(*sb, dirs, r["name"].as<std::string>());
  run::run_options opts;
  opts.params = run::resolve_params(book, run::parse_param_args(params));
  bool as_json = r.count("json") > 0;
  ro.forward_only = r.count("forward-only") > 0;
  std::ostream& progress = as_json ? std::cerr : std::cout;
  run::config cfg = lua::load_config(*sb, config_file(r));
  ro.audit_file = audit_file(r);
  ro.source = database_choice(r);
  ro.status = r.count("quiet") ? nullptr : &std::cerr;
  run::reporter out(progress, output_options(r, as_json ? STDERR_FILENO : STDOUT_FILENO));
  run::terminal_confirmer confirm;
  system_clock clk;
  lua::fingerprint_probe probe(*sb);
  run::rehearsal_result res = run::rehearse(book, cfg, opts, ro, probe, out, confirm, clk);
  print_verdict(progress, res, ro);
  if (as_json) print_json(res.to_json(ro));
  return res.ok ? exit_codes::ok : exit_codes::failed;
}

}  // namespace rb::cli
