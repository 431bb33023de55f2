// `runbook run | resume | rollback`: parse the options, load the runbook and the config (Lua),
// and hand them to a run session in the engine.
#include <unistd.h>

#include <iomanip>
#include <iostream>

#include "bindings/cli/commands.hpp"
#include "bindings/cli/options.hpp"
#include "bindings/config.hpp"
#include "bindings/open_all.hpp"
#include "bindings/loader.hpp"
#include "engine/error.hpp"
#include "engine/run/cancel.hpp"
#include "engine/run/catalog.hpp"
#include "engine/run/fleet.hpp"
#include "engine/run/liveness.hpp"
#include "engine/run/params.hpp"
#include "engine/run/session.hpp"
#include "engine/run/state.hpp"
#include "engine/run/stop.hpp"
#include "engine/shell/child.hpp"
#include "engine/util/clock.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/text.hpp"

namespace rb::cli {
namespace fs = std::filesystem;

namespace {

constexpr const char* k_metrics_dir_help =
    "rewrite the Prometheus textfile DIR/runbook.prom when the run ends (default: the config's metrics_dir)";

/// `runbook run NAME --target 'shard-*'`: one member run per matching target, each its own
/// `runbook run` process (own run id, lock, audit records, rollback), a summary at the end.
int run_fleet(const cxxopts::ParseResult& r, const std::vector<std::string>& params, const run::runbook_def& book,
              const run::config& cfg, bool as_json) {
  std::vector<std::string> known;
  for (const auto& [name, t] : cfg.targets) known.push_back(name);
  std::vector<std::string> targets = run::select_targets(r["target"].as<std::string>(), known);
  if (r.count("dsn") || r.count("sandbox") || r.count("keep-sandbox"))
    throw error(error_kind::usage, "a fleet run (--target '" + r["target"].as<std::string>() +
                                       "') takes configured targets only: no --dsn or --sandbox");
  std::vector<std::string> base = {shell::self_program().string(), "run", book.name, "--json"};
  for (const auto& p : params) base.insert(base.end(), {"--param", p});
  if (r.count("yes")) base.push_back("--yes");
  if (r.count("verbose")) base.push_back("--verbose");  // into each member's log
  if (r.count("no-rollback")) base.push_back("--no-rollback");
  if (r.count("reason")) base.insert(base.end(), {"--reason", r["reason"].as<std::string>()});
  if (r.count("config")) base.insert(base.end(), {"--config", fs::absolute(r["config"].as<std::string>()).string()});
  if (r.count("state-dir")) base.insert(base.end(), {"--state-dir", fs::absolute(r["state-dir"].as<std::string>()).string()});
  if (r.count("metrics-dir"))
    base.insert(base.end(), {"--metrics-dir", fs::absolute(r["metrics-dir"].as<std::string>()).string()});
  run::fleet_options fo;
  fo.parallel = r.count("parallel") ? r["parallel"].as<int>() : 1;
  fo.stop_after_failures = r.count("stop-after-failures") ? r["stop-after-failures"].as<int>() : 0;
  fo.log_dir = run::state_dir(opt_string(r, "state-dir")) / "fleet" / (book.name + "-" + compact_utc_now());
  fs::create_directories(fo.log_dir);
  std::ostream& out = as_json ? std::cerr : std::cout;
  out << "fleet run of " << book.name << " on " << targets.size() << " targets (" << join(targets, ", ")
      << "), " << fo.parallel << " at a time; member logs in " << fo.log_dir.string() << "\n";
  run::stop_source stop;
  run::cancel::install_handlers();
  run::cancel::forward signals(stop);
  run::fleet_result res = run::run_fleet(
      targets,
      [&](const std::string& t) {
        auto argv = base;
        argv.insert(argv.end(), {"--target", t});
        return argv;
      },
      fo, [&] { return stop.ever_requested(); },
      [&](const run::fleet_member& m, bool ended) {
        if (!ended) out << "  " << m.target << ": started\n";
        else out << "  " << m.target << ": " << m.status << " (" << format_duration(m.duration) << ")\n";
        out.flush();
      });
  if (as_json) {
    print_json(res.to_json());
  } else {
    std::size_t w = 6;
    for (const auto& m : res.members) w = std::max(w, m.target.size());
    std::cout << "\n" << std::left << std::setw(static_cast<int>(w + 2)) << "TARGET" << std::setw(26) << "STATUS"
              << std::setw(10) << "DURATION" << "RUN\n";
    for (const auto& m : res.members)
      std::cout << std::setw(static_cast<int>(w + 2)) << m.target << std::setw(26) << m.status << std::setw(10)
                << (m.exit_code < 0 && m.status == "not_started" ? "-" : format_duration(m.duration))
                << (m.run_id.empty() ? "-" : m.run_id) << "\n";
  }
  return res.exit_code();
}

/// Progress goes to stdout, or to stderr when stdout carries --json; --quiet / --verbose.
run::reporter make_reporter(const cxxopts::ParseResult& r, bool as_json) {
  return run::reporter(as_json ? std::cerr : std::cout, output_options(r, as_json ? STDERR_FILENO : STDOUT_FILENO));
}

/// Where the session says what it does besides the run (starting a sandbox ...): stderr, or
/// nowhere with --quiet.
std::ostream* status_stream(const cxxopts::ParseResult& r) { return r.count("quiet") ? nullptr : &std::cerr; }

/// resume and rollback: continue a recorded run, forward or backward.
int continue_run(const std::string& what, std::vector<std::string> args) {
  bool backward = what == "rollback";
  command_parser p(what, backward ? "Run the rollback path of a finished or interrupted run: the rollback handlers of "
                                    "its completed steps, in reverse."
                                  : "Continue an interrupted run from its first unfinished step.",
                   std::move(args));
  p.options.add_options()("force", "resume even though the runbook file changed since the run started")(
      "y,yes", "confirm destructive steps")("reason", "why, recorded in the audit log", cxxopts::value<std::string>())(
      "json", "print one JSON object with the run id and status at the end")(
      "run", "run id (or a unique prefix)", cxxopts::value<std::string>());
  if (backward) p.options.add_options()("phase", "only the steps of this phase (a partial rollback)", cxxopts::value<std::string>());
  else
    p.options.add_options()("no-rollback", "if interrupted (Ctrl-C), stop without rolling back")(
        "rerun-interrupted", "run a step that was interrupted outside a transaction again (its work may be done twice)")(
        "mark-interrupted-done", "a step that was interrupted outside a transaction did its work: record it as done");
  p.options.add_options()("target", "database target from the config file (default: the one the run used)",
                          cxxopts::value<std::string>())(
      "dsn", "connect to this DSN (also: RUNBOOK_DSN)", cxxopts::value<std::string>())(
      "config", "config file (default: ./runbook.lua)", cxxopts::value<std::string>())(
      "metrics-dir", k_metrics_dir_help, cxxopts::value<std::string>());
  add_output_options(p.options);
  p.options.parse_positional({"run"});
  p.options.positional_help("RUN");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  if (!r.count("run"))
    throw error(error_kind::usage, what + " needs a run id: runbook " + what + " RUN (see 'runbook history')");
  fs::path log_path = audit_file(r);
  run::run_state state = run::load_run(log_path, r["run"].as<std::string>());
  // Refuse while the run's own process is still alive on this host.
  if (!state.end && run::run_owner_state(state) == run::owner_state::alive)
    throw error(error_kind::locked,
                "run " + state.run_id + " is still running (pid " + std::to_string(run::owner_pid(state)) + ")");
  auto dirs = run::search_path();
  auto sb = lua::make_sandbox(lib_dirs(dirs));
  std::string name = state.runbook();
  run::runbook_def book = [&] {
    if (run::find_runbook(dirs, name)) return load_named(*sb, dirs, name);
    std::string recorded = state.start.value("file", "");
    std::error_code ec;
    if (!recorded.empty() && fs::is_regular_file(recorded, ec)) return lua::load_runbook(*sb, recorded, "");
    throw error(error_kind::usage, "run " + state.run_id + " ran runbook '" + name +
                                       "', which is no longer on the search path nor at " + recorded);
  }();
  if (backward && book.file_sha256 != state.start.value("sha256", "") && !r.count("force"))
    throw error(error_kind::usage, "the runbook file " + book.file.string() + " changed since run " + state.run_id +
                                       " started; roll back with --force to use the changed rollback handlers");
  run::run_options opts;
  opts.params = state.start.value("params", json::object());
  opts.yes = r.count("yes") > 0 || state.start.value("yes", false);
  opts.reason = opt_string(r, "reason").value_or("");
  opts.force = r.count("force") > 0;
  opts.no_rollback = !backward && r.count("no-rollback") > 0;
  opts.rerun_interrupted = !backward && r.count("rerun-interrupted") > 0;
  opts.mark_interrupted_done = !backward && r.count("mark-interrupted-done") > 0;
  if (opts.rerun_interrupted && opts.mark_interrupted_done)
    throw error(error_kind::usage, "--rerun-interrupted and --mark-interrupted-done contradict each other: pass one");
  bool as_json = r.count("json") > 0;
  run::reporter out = make_reporter(r, as_json);
  run::terminal_confirmer confirm;
  system_clock clk;
  run::config cfg = lua::load_config(*sb, config_file(r));
  run::session_options so;
  so.audit_file = log_path;
  so.database = run::continuation_choice(state, database_choice(r), what);
  if (r.count("metrics-dir")) so.metrics_dir = fs::path(r["metrics-dir"].as<std::string>());
  so.status = status_stream(r);
  run::session session(book, std::move(cfg), std::move(so), out, confirm, clk);
  if (backward) {
    // Here a rollback that did its work is the success asked for: exit 0 (3 if it failed).
    run::run_outcome o = session.rollback(state, opts, opt_string(r, "phase"));
    if (as_json) print_json(o.to_json());
    return o.status == run::status::rolled_back ? exit_codes::ok : o.exit_code();
  }
  run::run_outcome o = session.resume(state, opts);
  if (as_json) print_json(o.to_json());
  return o.exit_code();
}

}  // namespace

int cmd_run(std::vector<std::string> args) {
  std::vector<std::string> params = take_params(args);
  command_parser p("run", "Run a runbook by name.", std::move(args));
  p.options.add_options()("p,param", "set a parameter (repeatable): --param name=value")(
      "dry-run", "print what would run; run no runbook code and write no audit records")(
      "y,yes", "confirm destructive steps (required when stdin is not a terminal)")(
      "reason", "why this run happens, recorded in the audit log", cxxopts::value<std::string>())(
      "json", "print one JSON object with the run id and status at the end (progress goes to stderr)")(
      "no-rollback", "if interrupted (Ctrl-C), stop without rolling back")(
      "parallel", "fleet runs (--target 'shard-*' or a,b,c): how many targets at once (default 1)",
      cxxopts::value<int>())(
      "stop-after-failures", "fleet runs: start no further target after this many failed", cxxopts::value<int>())(
      "metrics-dir", k_metrics_dir_help, cxxopts::value<std::string>())(
      "name", "runbook name", cxxopts::value<std::string>());
  add_target_options(p.options);
  add_output_options(p.options);
  p.options.parse_positional({"name"});
  p.options.positional_help("NAME");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  if (!r.count("name")) throw error(error_kind::usage, "run needs a runbook name: runbook run NAME (see 'runbook list')");
  auto dirs = run::search_path();
  auto sb = lua::make_sandbox(lib_dirs(dirs));
  auto book = load_named(*sb, dirs, r["name"].as<std::string>());
  run::run_options opts;
  opts.params = run::resolve_params(book, run::parse_param_args(params));
  opts.yes = r.count("yes") > 0;
  opts.reason = opt_string(r, "reason").value_or("");
  opts.no_rollback = r.count("no-rollback") > 0;
  bool as_json = r.count("json") > 0;
  run::reporter out = make_reporter(r, as_json);
  run::terminal_confirmer confirm;
  system_clock clk;
  if (r.count("dry-run")) {
    run::reporter dry(std::cout, run::reporter::detect(STDOUT_FILENO));
    run::print_dry_run(book, opts, dry);
    return 0;
  }
  run::require_confirmable(book, opts, confirm);  // before a sandbox is started for nothing
  if (r.count("target") && run::is_fleet_spec(r["target"].as<std::string>()))
    return run_fleet(r, params, book, lua::load_config(*sb, config_file(r)), as_json);
  if (r.count("parallel") || r.count("stop-after-failures"))
    throw error(error_kind::usage, "--parallel and --stop-after-failures are for fleet runs: --target 'shard-*' or --target a,b,c");
  run::session_options so;
  so.audit_file = audit_file(r);
  so.database = database_choice(r);
  so.status = status_stream(r);
  if (r.count("metrics-dir")) so.metrics_dir = fs::path(r["metrics-dir"].as<std::string>());
  run::session session(book, lua::load_config(*sb, config_file(r)), std::move(so), out, confirm, clk);
  run::run_outcome o = session.run(opts);
  if (as_json) print_json(o.to_json());
  return o.exit_code();
}

int cmd_resume(std::vector<std::string> args) { return continue_run("resume", std::move(args)); }

int cmd_rollback(std::vector<std::string> args) { return continue_run("rollback", std::move(args)); }

}  // namespace rb::cli
