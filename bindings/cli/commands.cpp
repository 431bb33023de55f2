// The runbook command line: list, show, check, run, resume, rollback, rehearse, history, log,
// audit verify|head, and the dispatch to sandbox list|clean.
#include "bindings/cli/commands.hpp"

#include "bindings/cli/alert_commands.hpp"
#include "bindings/cli/sandbox_commands.hpp"

#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <cxxopts.hpp>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "bindings/config.hpp"
#include "bindings/fingerprint.hpp"
#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/audit/log.hpp"
#include "engine/db/cluster.hpp"
#include "engine/shell/process.hpp"
#include "engine/error.hpp"
#include "engine/run/cancel.hpp"
#include "engine/run/catalog.hpp"
#include "engine/run/command.hpp"
#include "engine/run/confirm.hpp"
#include "engine/run/executor.hpp"
#include "engine/run/journal.hpp"
#include "engine/run/params.hpp"
#include "engine/run/reporter.hpp"
#include "engine/run/state.hpp"
#include "engine/run/target.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/json_text.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::cli {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* k_overview = R"(runbook — run PostgreSQL operations as audited, resumable Lua runbooks.

Usage: runbook <command> [options]

Commands:
  list                     list the runbooks on the search path
  show NAME                show a runbook's params, phases and steps (--format text|json)
  check [PATH...]          load and validate runbooks; errors name the file and line
  run NAME                 run a runbook (--param k=v, --dry-run, --yes, --reason, --json)
  resume RUN               continue an interrupted run from its first unfinished step
  rollback RUN             run the rollback path of a finished or interrupted run (--phase NAME)
  rehearse NAME            prove the rollback on a copy: clone, run forward, roll back, compare
  history [NAME]           list past runs and how they ended
  log RUN                  show every audit record of one run
  audit verify [FILE]      check the audit log's hash chain; names the first broken record
  audit head [FILE]        print the last record's SEQ:HASH, to keep outside (audit verify --head)
  sandbox list|clean       show the throwaway PostgreSQL clusters; clean stops and removes
                           those whose runbook process is gone (crash, kill -9)
  alert test CHANNEL       send a test notification to a configured channel; prints the answer

Runbooks are found in ./runbooks and in the directories of RUNBOOK_PATH (colon-separated);
runbook "migration.centralized" lives in runbooks/migration/centralized.lua.
State (the audit log, audit.jsonl) lives in --state-dir, $RUNBOOK_STATE_DIR,
$XDG_STATE_HOME/runbook or ~/.local/state/runbook.

Ctrl-C stops the running step (its SQL cancelled, its commands killed) and rolls back
(unless --no-rollback); a second Ctrl-C stops at once, and 'runbook resume' continues.

Exit codes: 0 succeeded, 1 run failed (rolled back), 2 usage or bad input,
3 rollback failed, 4 succeeded with failures (steps with on_error = "continue" failed),
75 locked by another run, 130 cancelled.

After a crash, 'runbook resume' never runs a committed phase twice: it asks the server what
became of a COMMIT in flight. A step interrupted outside a transaction is checked by its
verify, re-run only if it is idempotent = true, and otherwise waits for the operator
(--rerun-interrupted or --mark-interrupted-done).

'runbook <command> --help' describes a command's options.
)";

struct common {
  std::optional<std::string> state_dir;
  bool json = false;
};

/// Takes every --param/-p value out of argv (cxxopts would split them at commas).
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

/// A cxxopts parser for one subcommand, with the options every command shares.
struct command_parser {
  cxxopts::Options options;
  std::vector<std::string> args;

  command_parser(const std::string& name, const std::string& help, std::vector<std::string> a)
      : options("runbook " + name, help), args(std::move(a)) {
    options.add_options()("h,help", "show this help")(
        "state-dir", "directory of the audit log (default: $RUNBOOK_STATE_DIR or ~/.local/state/runbook)",
        cxxopts::value<std::string>());
  }

  cxxopts::ParseResult parse() {
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
};

std::optional<std::string> opt_string(const cxxopts::ParseResult& r, const char* name) {
  if (r.count(name)) return r[name].as<std::string>();
  return std::nullopt;
}

fs::path audit_file(const cxxopts::ParseResult& r) {
  return run::audit_path(run::state_dir(opt_string(r, "state-dir")));
}

std::vector<fs::path> lib_dirs(const std::vector<fs::path>& dirs) {
  std::vector<fs::path> out;
  for (const auto& d : dirs) out.push_back(d / "lib");
  return out;
}

/// Resolves NAME (or a path to a .lua file) and loads it.
run::runbook_def load_named(lua::sandbox& sb, const std::vector<fs::path>& dirs, const std::string& name) {
  std::error_code ec;
  if (name.size() > 4 && name.substr(name.size() - 4) == ".lua" && fs::is_regular_file(name, ec))
    return lua::load_runbook(sb, name, "");
  fs::path file = run::require_runbook(dirs, name);
  return lua::load_runbook(sb, file, name);
}

/// Every --json output goes through here: secrets are redacted in values and keys (before
/// JSON escaping, which could otherwise hide one from the redacting stdout).
void print_json(json value, int indent = -1) {
  secrets::redact(value);
  std::cout << json_text(value, indent) << "\n";
}

std::string pad(const std::string& s, std::size_t w) { return s.size() >= w ? s + "  " : s + std::string(w - s.size(), ' '); }

// ---- list ------------------------------------------------------------------------------

int cmd_list(std::vector<std::string> args) {
  command_parser p("list", "List the runbooks on the search path.", std::move(args));
  p.options.add_options()("json", "print JSON");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  auto dirs = run::search_path();
  auto entries = run::list_runbooks(dirs);
  json out = json::array();
  for (const auto& e : entries) {
    json item = {{"name", e.name}, {"file", e.file.string()}};
    try {
      auto sb = lua::make_sandbox(lib_dirs(dirs));
      auto def = lua::load_runbook(*sb, e.file, e.name);
      item["title"] = def.title;
      item["tags"] = def.tags;
    } catch (const error& err) {
      item["error"] = secrets::redact(err.what());
    }
    out.push_back(item);
  }
  if (r.count("json")) {
    print_json(out, 2);
    return 0;
  }
  if (entries.empty()) {
    std::cout << "no runbooks found (looked in ./runbooks and RUNBOOK_PATH)\n";
    return 0;
  }
  std::size_t w = 4;
  for (const auto& e : entries) w = std::max(w, e.name.size());
  for (const auto& item : out) {
    std::cout << pad(item["name"].get<std::string>(), w + 2);
    if (item.contains("error")) std::cout << "(broken: run 'runbook check " << item["file"].get<std::string>() << "')";
    else std::cout << item["title"].get<std::string>();
    if (item.contains("tags") && !item["tags"].empty()) {
      std::vector<std::string> tags = item["tags"].get<std::vector<std::string>>();
      std::cout << "  [" << join(tags, ", ") << "]";
    }
    std::cout << "\n";
  }
  return 0;
}

// ---- show ------------------------------------------------------------------------------

json step_json(const run::runbook_def& book, const run::phase_def& phase, const run::step_def& s) {
  json j = {{"name", s.name}, {"source", s.where.str()}, {"verify", s.has_verify}, {"rollback", s.has_rollback},
            {"when", s.has_when}, {"idempotent", s.idempotent}};
  if (!s.description.empty()) j["description"] = s.description;
  j["timeout"] = format_duration(s.timeout ? *s.timeout : phase.timeout ? *phase.timeout : book.timeout);
  if (s.retry.attempts > 1) {
    j["retry"] = {{"attempts", s.retry.attempts},
                  {"backoff", s.retry.backoff == run::backoff_kind::fixed ? "fixed" : "exponential"},
                  {"initial", format_duration(s.retry.initial)},
                  {"max", format_duration(s.retry.max)},
                  {"on", s.retry.on}};
  }
  if (s.confirm) j["confirm"] = *s.confirm;
  j["on_error"] = std::string(run::to_string(s.on_err ? *s.on_err : phase.on_err ? *phase.on_err : book.on_err));
  return j;
}

json book_json(const run::runbook_def& book) {
  json params = json::array();
  for (const auto& p : book.params) {
    json pj = {{"name", p.name}, {"type", std::string(run::to_string(p.type))}, {"required", p.required}};
    if (p.default_text) pj["default"] = *p.default_text;
    if (!p.doc.empty()) pj["doc"] = p.doc;
    if (!p.values.empty()) pj["values"] = p.values;
    params.push_back(pj);
  }
  json phases = json::array();
  for (const auto& ph : book.phases) {
    json steps = json::array();
    for (const auto& s : ph.steps) steps.push_back(step_json(book, ph, s));
    json pj = {{"name", ph.name}, {"source", ph.where.str()}, {"transaction", ph.transaction}, {"steps", steps}};
    if (!ph.description.empty()) pj["description"] = ph.description;
    phases.push_back(pj);
  }
  return {{"name", book.name},   {"title", book.title},       {"description", book.description},
          {"lock", book.lock},   {"target", book.target ? json(*book.target) : json(nullptr)},
          {"tags", book.tags},   {"file", book.file.string()}, {"sha256", book.file_sha256},
          {"params", params},    {"phases", phases},          {"on_error", std::string(run::to_string(book.on_err))}};
}

void print_book_text(const run::runbook_def& book) {
  std::cout << book.name;
  if (!book.title.empty()) std::cout << " — " << book.title;
  std::cout << "\n  file: " << book.file.string() << "\n";
  if (!book.description.empty()) std::cout << "  " << book.description << "\n";
  if (!book.tags.empty()) std::cout << "  tags: " << join(book.tags, ", ") << "\n";
  if (!book.params.empty()) {
    std::cout << "\nparams (--param name=value):\n";
    for (const auto& p : book.params) {
      std::cout << "  " << pad(p.name, 16) << pad(std::string(run::to_string(p.type)), 10);
      if (p.default_text) std::cout << "default " << *p.default_text;
      else if (p.required) std::cout << "required";
      if (!p.values.empty()) std::cout << "  one of: " << join(p.values, ", ");
      if (!p.doc.empty()) std::cout << "  — " << p.doc;
      std::cout << "\n";
    }
  }
  std::cout << "\nphases:\n";
  std::size_t pn = 0, sn = 0;
  for (const auto& ph : book.phases) {
    std::cout << "  " << ++pn << ". " << ph.name;
    if (ph.transaction) std::cout << "  (one transaction, a savepoint per step)";
    if (!ph.description.empty()) std::cout << " — " << ph.description;
    std::cout << "\n";
    for (const auto& s : ph.steps) {
      json j = step_json(book, ph, s);
      std::vector<std::string> notes;
      if (s.has_when) notes.push_back("conditional");
      if (s.has_verify) notes.push_back("verify");
      if (s.has_rollback) notes.push_back("rollback");
      if (s.idempotent) notes.push_back("idempotent");
      if (s.retry.attempts > 1)
        notes.push_back("retry " + std::to_string(s.retry.attempts) + "x " + j["retry"]["backoff"].get<std::string>() +
                        (s.retry.on.empty() ? "" : " on " + join(s.retry.on, ",")));
      notes.push_back("timeout " + j["timeout"].get<std::string>());
      if (j["on_error"] != "rollback") notes.push_back("on_error " + j["on_error"].get<std::string>());
      if (s.confirm) notes.push_back("CONFIRM: " + *s.confirm);
      std::cout << "     " << pad(std::to_string(++sn) + ".", 4) << pad(s.name, 28) << "[" << join(notes, ", ") << "]\n";
    }
  }
}

int cmd_show(std::vector<std::string> args) {
  command_parser p("show", "Show a runbook: params, phases and steps.", std::move(args));
  p.options.add_options()("format", "text or json", cxxopts::value<std::string>()->default_value("text"))(
      "name", "runbook name", cxxopts::value<std::string>());
  p.options.parse_positional({"name"});
  p.options.positional_help("NAME");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  if (!r.count("name")) throw error(error_kind::usage, "show needs a runbook name: runbook show NAME");
  std::string format = r["format"].as<std::string>();
  if (format != "text" && format != "json") throw error(error_kind::usage, "--format must be text or json, not '" + format + "'");
  auto dirs = run::search_path();
  auto sb = lua::make_sandbox(lib_dirs(dirs));
  auto book = load_named(*sb, dirs, r["name"].as<std::string>());
  if (format == "json") print_json(book_json(book), 2);
  else print_book_text(book);
  return 0;
}

// ---- check -----------------------------------------------------------------------------

int cmd_check(std::vector<std::string> args) {
  command_parser p("check", "Load and validate runbooks without running them.", std::move(args));
  p.options.add_options()("paths", "files or directories", cxxopts::value<std::vector<std::string>>());
  p.options.parse_positional({"paths"});
  p.options.positional_help("[PATH...]");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  auto dirs = run::search_path();
  std::vector<run::catalog_entry> todo;
  if (r.count("paths")) {
    for (const auto& path : r["paths"].as<std::vector<std::string>>()) {
      std::error_code ec;
      if (fs::is_directory(path, ec)) {
        for (auto& e : run::list_runbooks({path})) todo.push_back(e);
      } else if (fs::is_regular_file(path, ec)) {
        // Name it by its place below a search directory when it has one.
        std::string name;
        fs::path abs = fs::weakly_canonical(path);
        for (const auto& d : dirs) {
          fs::path dabs = fs::weakly_canonical(d);
          auto rel = abs.lexically_relative(dabs);
          if (!rel.empty() && *rel.begin() != "..") name = run::name_for(dabs, abs);
        }
        todo.push_back({name, path});
      } else {
        throw error(error_kind::usage, "no such file or directory: '" + path + "'");
      }
    }
  } else {
    todo = run::list_runbooks(dirs);
    if (todo.empty()) throw error(error_kind::usage, "no runbooks to check (no ./runbooks and RUNBOOK_PATH is empty)");
  }
  int bad = 0;
  for (const auto& e : todo) {
    try {
      auto sb = lua::make_sandbox(lib_dirs(dirs));
      auto book = lua::load_runbook(*sb, e.file, e.name);
      std::cout << "ok     " << book.name << " (" << e.file.string() << ", " << book.step_count() << " steps)\n";
    } catch (const error& err) {
      ++bad;
      std::cout << "error  " << secrets::redact(err.what()) << "\n";
    }
  }
  if (bad) std::cout << bad << " of " << todo.size() << " runbooks have errors\n";
  return bad ? exit_codes::usage : exit_codes::ok;
}

// ---- run / resume ----------------------------------------------------------------------

void add_target_options(cxxopts::Options& o) {
  o.add_options()("target", "database target from the config file", cxxopts::value<std::string>())(
      "dsn", "connect to this DSN instead of a configured target (also: RUNBOOK_DSN)", cxxopts::value<std::string>())(
      "config", "config file (default: ./runbook.lua)", cxxopts::value<std::string>())(
      "sandbox", "run against a throwaway local PostgreSQL seeded from the runbook's fixture")(
      "keep-sandbox", "with --sandbox: leave the sandbox running afterwards and print how to connect");
}

/// Where a run's database comes from: a configured target, a DSN, or a sandbox cluster.
struct run_database {
  run::config cfg;
  std::unique_ptr<db::cluster> cluster;
  std::unique_ptr<run::target_session> session;

  void open(lua::sandbox& sb, const cxxopts::ParseResult& r, const run::runbook_def& book) {
    std::optional<fs::path> cfg_file;
    if (r.count("config")) cfg_file = r["config"].as<std::string>();
    cfg = lua::load_config(sb, cfg_file);
    std::optional<run::resolved_target> target;
    if (r.count("sandbox") || r.count("keep-sandbox")) {
      db::cluster_options co;
      co.database = "sandbox";
      co.keep = r.count("keep-sandbox") > 0;
      std::cerr << "starting a sandbox PostgreSQL…\n";
      cluster = std::make_unique<db::cluster>(co);
      if (book.fixture) {
        std::cerr << "loading fixture " << book.fixture->string() << "\n";
        cluster->run_sql_file(*book.fixture, "sandbox");
      }
      run::resolved_target t;
      t.name = "sandbox";
      t.dsn = cluster->dsn();
      t.statement_timeout = cfg.statement_timeout;
      t.lock_timeout = cfg.lock_timeout;
      target = t;
    } else {
      target = run::resolve_target(cfg, opt_string(r, "target"), opt_string(r, "dsn"), book.target);
    }
    session = std::make_unique<run::target_session>(target);
  }

  ~run_database() {
    if (cluster && cluster->running() && (cluster_kept)) {
      std::cerr << "the sandbox is still running: " << cluster->connect_hint() << "\n";
    }
  }
  bool cluster_kept = false;

  void use_in(run::executor& exec) {
    exec.use_target(*session);
    exec.use_config(cfg);
  }
};

int finish_run(const run::run_outcome& outcome, bool as_json) {
  if (as_json) print_json(outcome.to_json());
  return outcome.exit_code();
}

int cmd_run(std::vector<std::string> args) {
  std::vector<std::string> params = take_params(args);
  command_parser p("run", "Run a runbook by name.", std::move(args));
  p.options.add_options()("p,param", "set a parameter (repeatable): --param name=value")(
      "dry-run", "print what would run; run no runbook code and write no audit records")(
      "y,yes", "confirm destructive steps (required when stdin is not a terminal)")(
      "reason", "why this run happens, recorded in the audit log", cxxopts::value<std::string>())(
      "json", "print one JSON object with the run id and status at the end (progress goes to stderr)")(
      "no-rollback", "if interrupted (Ctrl-C), stop without rolling back")(
      "name", "runbook name", cxxopts::value<std::string>());
  add_target_options(p.options);
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
  std::ostream& progress = as_json ? std::cerr : std::cout;
  run::reporter out(progress, run::reporter::detect(as_json ? STDERR_FILENO : STDOUT_FILENO));
  run::terminal_confirmer confirm;
  system_clock clk;
  if (r.count("dry-run")) {
    run::reporter dry(std::cout, run::reporter::detect(STDOUT_FILENO));
    run::print_dry_run(book, opts, dry);
    return 0;
  }
  run::require_confirmable(book, opts, confirm);  // before a sandbox is started for nothing
  run_database database;
  database.open(*sb, r, book);
  database.cluster_kept = r.count("keep-sandbox") > 0;
  audit::log log(audit_file(r), audit::key_from_env());
  run::executor exec(log, out, clk, confirm);
  database.use_in(exec);
  run_alerts alerts(database.cfg, audit_file(r), clk, out);
  exec.use_notifier(alerts.get());
  run::cancel::install_handlers();
  run::run_outcome outcome = exec.run(book, opts);
  alerts.wait();  // pending deliveries get at most alert_wait
  return finish_run(outcome, as_json);
}

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
      "config", "config file (default: ./runbook.lua)", cxxopts::value<std::string>());
  p.options.parse_positional({"run"});
  p.options.positional_help("RUN");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  if (!r.count("run"))
    throw error(error_kind::usage, what + " needs a run id: runbook " + what + " RUN (see 'runbook history')");
  fs::path log_path = audit_file(r);
  run::run_state state = run::load_run(log_path, r["run"].as<std::string>());
  if (!state.end) {
    // Refuse while the run's own process is still alive on this host.
    long long pid = state.start.value("pid", 0LL);
    for (const auto& rec : state.records)
      if (rec.value("event", "") == "run.resume") pid = rec.value("pid", pid);
    std::string host = state.start.value("host", "");
    if (pid > 0 && host == run::host_name() && pid != ::getpid() && ::kill(static_cast<pid_t>(pid), 0) == 0) {
      std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
      std::string text((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
      if (text.find("runbook") != std::string::npos)
        throw error(error_kind::locked, "run " + state.run_id + " is still running (pid " + std::to_string(pid) + ")");
    }
  }
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
  run::reporter out(as_json ? std::cerr : std::cout, run::reporter::detect(as_json ? STDERR_FILENO : STDOUT_FILENO));
  run::terminal_confirmer confirm;
  system_clock clk;
  std::optional<fs::path> cfg_file;
  if (r.count("config")) cfg_file = r["config"].as<std::string>();
  run::config cfg = lua::load_config(*sb, cfg_file);
  std::optional<std::string> target_name = opt_string(r, "target");
  std::string recorded_target = state.start.contains("target") && state.start["target"].is_string()
                                    ? state.start["target"].get<std::string>() : "";
  if (!target_name && recorded_target == "sandbox" && !r.count("dsn"))
    throw error(error_kind::usage, "run " + state.run_id + " ran in a --sandbox, which is gone; " + what +
                                       " it with --dsn or --target");
  if (!target_name && !recorded_target.empty() && recorded_target != "dsn") target_name = recorded_target;
  run::target_session session(run::resolve_target(cfg, target_name, opt_string(r, "dsn"), book.target));
  audit::log log(log_path, audit::key_from_env());
  run::executor exec(log, out, clk, confirm);
  exec.use_target(session);
  exec.use_config(cfg);
  run_alerts alerts(cfg, log_path, clk, out);
  exec.use_notifier(alerts.get());
  run::cancel::install_handlers();
  if (backward) {
    // Here a rollback that did its work is the success asked for: exit 0 (3 if it failed).
    run::run_outcome o = exec.rollback(book, state, opts, opt_string(r, "phase"));
    alerts.wait();
    if (as_json) print_json(o.to_json());
    return o.status == run::status::rolled_back ? exit_codes::ok : o.exit_code();
  }
  run::run_outcome outcome = exec.resume(book, state, opts);
  alerts.wait();
  return finish_run(outcome, as_json);
}

// ---- rehearse --------------------------------------------------------------------------

/// The steps of `book` with no rollback handler, as "phase/step".
std::vector<std::string> steps_without_rollback(const run::runbook_def& book) {
  std::vector<std::string> out;
  for (const auto& ph : book.phases)
    for (const auto& st : ph.steps)
      if (!st.has_rollback) out.push_back(ph.name + "/" + st.name);
  return out;
}

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
      "json", "print one JSON object with the result at the end")(
      "target", "database target to clone (from the config file)", cxxopts::value<std::string>())(
      "dsn", "database to clone (also: RUNBOOK_DSN)", cxxopts::value<std::string>())(
      "config", "config file (default: ./runbook.lua)", cxxopts::value<std::string>())(
      "sandbox", "rehearse on the runbook's fixture instead of a clone")(
      "name", "runbook name", cxxopts::value<std::string>());
  p.options.parse_positional({"name"});
  p.options.positional_help("NAME");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  if (!r.count("name")) throw error(error_kind::usage, "rehearse needs a runbook name: runbook rehearse NAME");
  bool schema_only = r.count("schema-only") > 0;
  if (schema_only && r.count("sandbox"))
    throw error(error_kind::usage, "--schema-only clones a target without its data; with --sandbox the fixture is loaded whole");
  lua::fingerprint_options fp_opts;
  fp_opts.data = !schema_only;
  if (auto list = opt_string(r, "schemas")) {
    for (const auto& part : split(*list, ','))
      if (auto name = std::string(trim(part)); !name.empty()) fp_opts.schemas.push_back(name);
    if (fp_opts.schemas.empty()) throw error(error_kind::usage, "--schemas needs schema names: --schemas app,billing");
  }
  auto dirs = run::search_path();
  auto sb = lua::make_sandbox(lib_dirs(dirs));
  auto book = load_named(*sb, dirs, r["name"].as<std::string>());
  run::run_options opts;
  opts.params = run::resolve_params(book, run::parse_param_args(params));
  opts.yes = true;  // a copy: destructive steps are what is being rehearsed
  opts.rehearsal = true;
  opts.reason = "rehearsal";
  bool as_json = r.count("json") > 0;
  bool forward_only = r.count("forward-only") > 0;
  std::ostream& progress = as_json ? std::cerr : std::cout;

  std::optional<fs::path> cfg_file;
  if (r.count("config")) cfg_file = r["config"].as<std::string>();
  run::config cfg = lua::load_config(*sb, cfg_file);
  std::optional<run::resolved_target> source;
  if (!r.count("sandbox")) {
    source = run::resolve_target(cfg, opt_string(r, "target"), opt_string(r, "dsn"), book.target);
    if (!source) throw error(error_kind::usage, "rehearse needs a database to clone (--target, --dsn, RUNBOOK_DSN) or --sandbox");
  } else if (!book.fixture) {
    throw error(error_kind::usage, "runbook '" + book.name + "' has no fixture to rehearse on; clone a target with --target or --dsn");
  }
  run::reporter out(progress, run::reporter::detect(as_json ? STDERR_FILENO : STDOUT_FILENO));
  run::terminal_confirmer confirm;
  system_clock clk;
  fs::path log_path = audit_file(r);
  audit::log log(log_path, audit::key_from_env());
  // The rehearsal's own work (the clone, the fingerprints) is audited under an id of its own,
  // outside the rehearsed run: `shell` records for pg_dump / pg_restore / psql, `sql` records.
  std::string rehearsal_id = "rehearsal-" + run::new_run_id();
  run::run_context probe_ctx(log, out, rehearsal_id, book, opts.params);
  auto audited = [&](shell::process_options& o) { return run::run_command(probe_ctx, o); };

  db::cluster_options co;
  co.database = "rehearsal";
  std::cerr << "starting a sandbox PostgreSQL for the rehearsal…\n";
  db::cluster copy(co);
  std::vector<std::string> notes;  // what the verdict must say besides the differences
  if (source) {
    std::optional<std::string> password = db::dsn_password(source->dsn);
    auto source_tool = [&](std::vector<std::string> argv) {
      shell::process_options o;
      o.argv = std::move(argv);
      if (password) o.env["PGPASSWORD"] = *password;
      return o;
    };
    std::cerr << "cloning " << source->name << (schema_only ? " (structure only)" : "") << " into it…\n";
    // Roles first (cluster-wide, without passwords), so that owners and privileges come along
    // and a migration's GRANT to a role of the source works on the copy. psql goes on past the
    // roles the sandbox has already (postgres).
    fs::path roles = copy.base_dir() / "roles.sql";
    auto roles_opts = source_tool({db::pg_bin("pg_dumpall").string(), "--roles-only", "--no-role-passwords", "-f",
                                   roles.string(), "-d", db::dsn_without_password(source->dsn)});
    auto rr = audited(roles_opts);
    bool with_roles = rr.ok();
    if (with_roles) {
      shell::process_options load;
      load.argv = {db::pg_bin("psql").string(), "--no-psqlrc", "--quiet", "--dbname=" + copy.dsn("postgres"),
                   "--file=" + roles.string()};
      auto lr = audited(load);
      with_roles = lr.ok();
      if (!with_roles) rr.err = "psql: " + lr.err;
    }
    if (!with_roles)
      notes.push_back("the source's roles could not be copied (" + std::string(trim(secrets::redact(rr.err))) +
                      "), so the copy was restored without owners or privileges");
    // Then the database: pg_dump of the source (custom format) restored into the sandbox.
    std::vector<std::string> keep_access;
    if (!with_roles) keep_access = {"--no-owner", "--no-privileges"};
    fs::path dump = copy.base_dir() / "clone.dump";
    auto dump_opts = source_tool({db::pg_bin("pg_dump").string(), "-Fc"});
    dump_opts.argv.insert(dump_opts.argv.end(), keep_access.begin(), keep_access.end());
    if (schema_only) dump_opts.argv.push_back("--schema-only");
    dump_opts.argv.insert(dump_opts.argv.end(), {"-f", dump.string(), "-d", db::dsn_without_password(source->dsn)});
    auto d = audited(dump_opts);
    if (!d.ok()) throw error(error_kind::shell, "unable to clone " + source->name + ": pg_dump: " + secrets::redact(d.err));
    shell::process_options restore;
    restore.argv = {db::pg_bin("pg_restore").string()};
    restore.argv.insert(restore.argv.end(), keep_access.begin(), keep_access.end());
    restore.argv.insert(restore.argv.end(), {"-d", copy.dsn(), dump.string()});
    auto rs = audited(restore);
    if (!rs.ok()) throw error(error_kind::shell, "unable to restore the clone: pg_restore: " + rs.err);
  } else {
    copy.run_sql_file(*book.fixture, "rehearsal", audited);
  }
  run::resolved_target t;
  t.name = "rehearsal";
  t.dsn = copy.dsn();
  t.lock_timeout = cfg.lock_timeout;
  t.statement_timeout = cfg.statement_timeout;
  run::target_session session(t);
  run::executor exec(log, out, clk, confirm);
  exec.use_target(session);
  exec.use_config(cfg);
  // Fingerprints are taken through the rehearsal's context, outside the rehearsed run.
  probe_ctx.set_target(&session);
  lua::fingerprint_probe probe(*sb);
  int before = probe.take(probe_ctx, fp_opts);
  run::cancel::install_handlers();
  run::run_outcome forward = exec.run(book, opts);
  json result = {{"run", forward.run_id}, {"rehearsal", rehearsal_id}, {"forward", forward.status},
                 {"before", probe.digest(before)}};
  std::vector<std::string> diff;
  std::vector<std::string> no_rollback = steps_without_rollback(book);
  bool has_rollback = no_rollback.size() < book.step_count();
  bool ok = false;
  if (schema_only) notes.push_back("--schema-only: the copy has no rows, so row counts, table contents and sequence positions were not compared");
  if (!fp_opts.schemas.empty()) notes.push_back("only schemas " + join(fp_opts.schemas, ", ") + " were compared (--schemas)");
  if (forward_only) {
    int after = probe.take(probe_ctx, fp_opts);
    diff = probe.diff(probe_ctx, before, after);
    ok = forward.status == run::status::succeeded || forward.status == run::status::succeeded_with_failures;
    progress << "\nwhat the runbook changes on the copy" << (diff.empty() ? ": nothing" : " (" + std::to_string(diff.size()) + "):") << "\n";
    result["after"] = probe.digest(after);
  } else {
    if (!has_rollback) {
      result["rollback"] = "none: the runbook has no rollback handlers";
    } else if (forward.status == run::status::succeeded ||
               forward.status == run::status::succeeded_with_failures) {
      run::run_state state = run::load_run(log_path, forward.run_id);
      run::run_outcome back = exec.rollback(book, state, opts, std::nullopt);
      result["rollback"] = back.status;
    } else {
      result["rollback"] = forward.rolled_back ? "ran after the failure" : "did not run";
    }
    int after = probe.take(probe_ctx, fp_opts);
    diff = probe.diff(probe_ctx, before, after);
    ok = diff.empty() && forward.status != run::status::rollback_failed;
    if (has_rollback && !diff.empty() && !no_rollback.empty())
      notes.insert(notes.begin(), "steps with no rollback handler: " + join(no_rollback, ", "));
    std::string what = schema_only ? "the database's structure" : "the database";
    std::string verdict =
        !has_rollback ? (diff.empty() ? "REHEARSAL PASSED: the runbook has no rollback handlers at all, and its forward "
                                        "run changed nothing the fingerprint sees"
                                      : "REHEARSAL FAILED: the runbook has no rollback handlers at all: nothing undid "
                                        "what it changed:")
        : diff.empty() ? "REHEARSAL PASSED: the rollback restored " + what + " exactly"
                       : "REHEARSAL FAILED: after the rollback " + what + " differs from the original:";
    progress << "\n" << verdict << "\n";
    result["after"] = probe.digest(after);
    result["restored"] = diff.empty();
    result["has_rollback"] = has_rollback;
  }
  for (const auto& line : diff) progress << "  - " << line << "\n";
  for (const auto& note : notes) progress << "note: " << note << "\n";
  result["diff"] = diff;
  result["notes"] = notes;
  result["schema_only"] = schema_only;
  result["schemas"] = fp_opts.schemas.empty() ? json("all") : json(fp_opts.schemas);
  log.append(forward.run_id, "rehearsal", {{"runbook", book.name},
                                {"rehearsal", rehearsal_id},
                                {"forward_only", forward_only}, {"diff", diff}, {"notes", notes},
                                {"has_rollback", has_rollback}, {"schema_only", schema_only},
                                {"schemas", result["schemas"]},
                                {"restored", forward_only ? json(nullptr) : json(diff.empty())}});
  if (as_json) print_json(result);
  return ok ? exit_codes::ok : exit_codes::failed;
}

// ---- history / log / audit -------------------------------------------------------------

int cmd_history(std::vector<std::string> args) {
  command_parser p("history", "List past runs, oldest first.", std::move(args));
  p.options.add_options()("json", "print JSON")("name", "only runs of this runbook", cxxopts::value<std::string>());
  p.options.parse_positional({"name"});
  p.options.positional_help("[NAME]");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  auto runs = run::history(audit_file(r), opt_string(r, "name"));
  std::string here = run::host_name();
  for (auto& s : runs) {
    if (s.status == "running" && s.host == here && s.pid > 0 && ::kill(static_cast<pid_t>(s.pid), 0) != 0)
      s.status = "interrupted";
  }
  if (r.count("json")) {
    json out = json::array();
    for (const auto& s : runs)
      out.push_back({{"run", s.run_id}, {"runbook", s.runbook}, {"status", s.status}, {"started", s.started},
                     {"ended", s.ended}, {"operator", s.op}, {"reason", s.reason}, {"resumes", s.resumes},
                     {"failed_steps", s.continued}});
    print_json(out, 2);
    return 0;
  }
  if (runs.empty()) {
    std::cout << "no runs recorded in " << audit_file(r).string() << "\n";
    return 0;
  }
  std::cout << pad("RUN", 24) << pad("RUNBOOK", 30) << pad("STATUS", 25) << pad("STARTED", 26) << "OPERATOR\n";
  for (const auto& s : runs) {
    std::cout << pad(s.run_id, 24) << pad(s.runbook, 30) << pad(s.status, 25) << pad(s.started, 26) << s.op
              << (s.reason.empty() ? "" : "  (" + s.reason + ")") << "\n";
    if (!s.continued.empty()) std::cout << "  failed steps: " << join(s.continued, ", ") << "\n";
  }
  return 0;
}

int cmd_log(std::vector<std::string> args) {
  command_parser p("log", "Show every audit record of one run.", std::move(args));
  p.options.add_options()("json", "print the raw JSON records")("run", "run id (or a unique prefix)",
                                                                  cxxopts::value<std::string>());
  p.options.parse_positional({"run"});
  p.options.positional_help("RUN");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  if (!r.count("run")) throw error(error_kind::usage, "log needs a run id: runbook log RUN (see 'runbook history')");
  auto state = run::load_run(audit_file(r), r["run"].as<std::string>());
  for (const auto& rec : state.records) {
    if (r.count("json")) {
      print_json(rec);
      continue;
    }
    std::string ev = rec.value("event", "");
    std::cout << rec.value("ts", "") << "  " << pad(ev, 15);
    std::string where = rec.value("phase", "");
    if (rec.contains("step")) where += "/" + rec.value("step", "");
    if (!where.empty()) std::cout << pad(where, 28);
    if (ev == "run.start")
      std::cout << rec.value("runbook", "") << " by " << rec.value("operator", "") << " params " << json_text(rec["params"])
                << (rec.value("reason", "").empty() ? "" : " reason: " + rec.value("reason", ""));
    if (ev == "sql") {
      std::string text;
      for (char c : rec.value("sql", "")) {
        if (std::isspace(static_cast<unsigned char>(c))) {
          if (!text.empty() && text.back() != ' ') text += ' ';
        } else {
          text += c;
        }
      }
      if (text.size() > 72) text = text.substr(0, 69) + "...";
      std::cout << text << "  [" << rec.value("params", 0) << " params, " << rec.value("rows", 0LL) << " rows"
                << (rec.contains("sqlstate") ? ", SQLSTATE " + rec.value("sqlstate", "") : "") << "]";
    }
    if (ev == "verify") std::cout << (rec.value("ok", false) ? "ok" : "failed");
    if (rec.contains("status")) std::cout << rec.value("status", "");
    if (rec.contains("attempt") && rec.value("attempt", 1) > 1) std::cout << " attempt " << rec.value("attempt", 1);
    if (rec.contains("duration_ms")) std::cout << " (" << format_duration(std::chrono::milliseconds(rec.value("duration_ms", 0LL))) << ")";
    if (rec.contains("reason") && ev != "run.start") std::cout << " " << rec.value("reason", "");
    if (rec.contains("message")) std::cout << rec.value("message", "");
    if (rec.contains("answer")) std::cout << rec.value("answer", "") << " (by " << rec.value("by", "") << ")";
    if (rec.contains("error") && rec["error"].is_object()) std::cout << "  error: " << rec["error"].value("message", "");
    std::cout << "\n";
  }
  return 0;
}

int cmd_audit(std::vector<std::string> args) {
  command_parser p("audit",
                   "Check the audit log, or print its head to keep elsewhere:\n"
                   "  runbook audit verify [FILE] [--head SEQ:HASH]   check the hash chain (and the anchor)\n"
                   "  runbook audit head [FILE] [--json]              print the last record's SEQ:HASH",
                   std::move(args));
  p.options.add_options()("action", "verify or head", cxxopts::value<std::string>())(
      "file", "audit log file", cxxopts::value<std::string>())(
      "head", "verify: an anchor SEQ:HASH from 'runbook audit head'; the log must hold that record",
      cxxopts::value<std::string>())("json", "head: print JSON");
  p.options.parse_positional({"action", "file"});
  p.options.positional_help("verify|head [FILE]");
  auto r = p.parse();
  if (r.count("help")) return std::cout << p.options.help(), 0;
  std::string action = r.count("action") ? r["action"].as<std::string>() : "";
  if (action != "verify" && action != "head")
    throw error(error_kind::usage, "usage: runbook audit verify [FILE] [--head SEQ:HASH] | runbook audit head [FILE] [--json]");
  if (action == "head" && r.count("head")) throw error(error_kind::usage, "--head goes with 'runbook audit verify'");
  std::optional<audit::anchor> anchor;
  if (r.count("head")) anchor = audit::parse_anchor(r["head"].as<std::string>());
  fs::path file = r.count("file") ? fs::path(r["file"].as<std::string>()) : audit_file(r);
  auto v = audit::verify(file, audit::key_from_env(), anchor);
  if (!v.ok) {
    std::cout << "audit log " << file.string() << ": BROKEN at record on line " << v.bad_line << ": " << v.problem
              << " (" << v.records << " records before it are intact)\n";
    return exit_codes::failed;
  }
  if (action == "head") {
    // Only a verified head is worth keeping: it vouches for every record up to it.
    if (r.count("json")) print_json({{"file", file.string()}, {"seq", v.records}, {"hash", v.last_hash}});
    else std::cout << v.records << ":" << v.last_hash << "\n";
    return 0;
  }
  std::cout << "audit log " << file.string() << ": " << v.records << " records, chain intact"
            << (anchor ? ", record " + std::to_string(anchor->seq) + " matches the anchor" : "") << "\n";
  return 0;
}

/// Overwrites the password of every --dsn in the process's own argv (commands parse a copy):
/// /proc/PID/cmdline shows argv to every local user for as long as the process runs.
void hide_dsn_passwords(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    char* dsn = nullptr;
    if (a == "--dsn" && i + 1 < argc) dsn = argv[++i];
    else if (a.rfind("--dsn=", 0) == 0) dsn = argv[i] + 6;
    if (!dsn) continue;
    if (auto pw = db::dsn_password(dsn)) secrets::add(*pw);
    db::redact_dsn_in_place(dsn);
  }
}

}  // namespace

int dispatch(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  hide_dsn_passwords(argc, argv);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::cout << k_overview;
    return args.empty() ? exit_codes::usage : exit_codes::ok;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::cout << "runbook " << RUNBOOK_VERSION << "\n";
    return 0;
  }
  std::string cmd = args[0];
  args.erase(args.begin());
  try {
    if (cmd == "list") return cmd_list(std::move(args));
    if (cmd == "show") return cmd_show(std::move(args));
    if (cmd == "check") return cmd_check(std::move(args));
    if (cmd == "run") return cmd_run(std::move(args));
    if (cmd == "resume") return continue_run("resume", std::move(args));
    if (cmd == "rollback") return continue_run("rollback", std::move(args));
    if (cmd == "rehearse") return cmd_rehearse(std::move(args));
    if (cmd == "history") return cmd_history(std::move(args));
    if (cmd == "log") return cmd_log(std::move(args));
    if (cmd == "audit") return cmd_audit(std::move(args));
    if (cmd == "sandbox") return cmd_sandbox(std::move(args));
    if (cmd == "alert") return cmd_alert(std::move(args));
    throw error(error_kind::usage, "unknown command '" + cmd + "'" +
                                       did_you_mean(cmd, {"list", "show", "check", "run", "resume", "rollback", "rehearse", "history", "log", "audit", "sandbox", "alert"}) +
                                       "; see 'runbook --help'");
  } catch (const error& e) {
    std::cerr << "runbook: " << secrets::redact(e.what()) << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "runbook: internal error: " << secrets::redact(e.what()) << "\n";
    return exit_codes::failed;
  }
}

}  // namespace rb::cli
