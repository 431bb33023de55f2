// The command table (a new command is one line here), the overview help, "did you mean", and
// the error → exit code mapping every command shares.
#include "bindings/cli/dispatch.hpp"

#include <iostream>
#include <string_view>
#include <utility>

#include "bindings/cli/alert_commands.hpp"
#include "bindings/cli/commands.hpp"
#include "bindings/cli/completion_command.hpp"
#include "bindings/cli/incident_commands.hpp"
#include "bindings/cli/options.hpp"
#include "engine/db/dsn.hpp"
#include "engine/error.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::cli {
namespace {

/// One command: its name, the function that runs it, and its lines in `runbook --help`
/// (usage, then what it does; a line break in the latter continues it on the next line).
struct command {
  const char* name;
  int (*run)(command_args args);
  std::vector<std::pair<const char*, const char*>> help;
};

const std::vector<command>& commands() {
  static const std::vector<command> table = {
      {"list", cmd_list, {{"list", "list the runbooks on the search path"}}},
      {"show", cmd_show, {{"show NAME", "show a runbook's params, phases, steps and watches (--json, --format dot|mermaid)"}}},
      {"init", cmd_init,
       {{"init [DIR]", "set up a runbook repository: runbooks/, .luarc.json (editor completion)\n"
                       "and .luacheckrc; existing files are kept"}}},
      {"new", cmd_new,
       {{"new NAME", "write a commented skeleton runbook and its fixture at the path NAME implies\n"
                     "(--kind migration|maintenance|incident|monitor)"}}},
      {"check", cmd_check, {{"check [PATH...]", "load and validate runbooks; errors name the file and line"}}},
      {"run", cmd_run, {{"run NAME", "run a runbook (--param k=v, --dry-run, --yes, --reason, --json)"}}},
      {"resume", cmd_resume, {{"resume RUN", "continue an interrupted run from its first unfinished step"}}},
      {"rollback", cmd_rollback,
       {{"rollback RUN", "run the rollback path of a finished or interrupted run (--phase NAME)"}}},
      {"rehearse", cmd_rehearse,
       {{"rehearse NAME", "prove the rollback on a copy: clone, run forward, roll back, compare"}}},
      {"history", cmd_history, {{"history [NAME]", "list past runs and how they ended"}}},
      {"log", cmd_log, {{"log RUN", "show every audit record of one run"}}},
      {"report", cmd_report,
       {{"report RUN", "a run's report: one self-contained HTML page (timeline, SQL, watches,\n"
                       "incidents), or Markdown for a postmortem (-o FILE, --format html|md)"}}},
      {"audit", cmd_audit,
       {{"audit verify [FILE]", "check the audit log's hash chain; names the first broken record"},
        {"audit head [FILE]", "print the last record's SEQ:HASH, to keep outside (audit verify --head)"}}},
      {"sandbox", cmd_sandbox,
       {{"sandbox list|clean", "show the throwaway PostgreSQL clusters; clean stops and removes\n"
                               "those whose runbook process is gone (crash, kill -9)"}}},
      {"alert", cmd_alert,
       {{"alert test CHANNEL", "send a test notification to a configured channel; prints the answer"}}},
      {"schedule", cmd_schedule,
       {{"schedule", "start scheduled runbooks when due: a daemon, or --once; --list shows the\n"
                     "next due times, --claims the registry (exactly once across hosts)"}}},
      {"incidents", cmd_incidents,
       {{"incidents", "list open incidents (--all, --json; --follow advances escalations)"}}},
      {"ack", cmd_ack, {{"ack ID", "acknowledge an incident: its escalation stops climbing (--by, --note)"}}},
      {"resolve", cmd_resolve, {{"resolve ID", "resolve an incident (--note); resolving twice does nothing"}}},
      {"completion", cmd_completion,
       {{"completion bash|zsh", "print the shell completion script (commands, options, runbook names)"}}},
  };
  return table;
}

constexpr const char* k_usage = R"(runbook — run PostgreSQL operations as audited, resumable Lua runbooks.

Usage: runbook <command> [options]

Commands:
)";

constexpr const char* k_more = R"(
New here? 'runbook init' sets up a repository, 'runbook new NAME' writes a runbook that runs,
'runbook run NAME --sandbox --yes' tries it on a throwaway PostgreSQL, and 'runbook rehearse
NAME --sandbox' proves its rollback.

Runbooks are found in ./runbooks and in the directories of RUNBOOK_PATH (colon-separated);
runbook "migration.centralized" lives in runbooks/migration/centralized.lua.
State (the audit log, audit.jsonl) lives in --state-dir, $RUNBOOK_STATE_DIR,
$XDG_STATE_HOME/runbook or ~/.local/state/runbook.

Output: --color=auto|always|never (every command; auto colours a terminal unless NO_COLOR is
set); run, resume, rollback and rehearse take --quiet and --verbose; --json on list, show,
history, log, incidents and schedule --list prints stable fields (docs/json.md).

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

/// `runbook --help`: the usage, one entry per command of the table, and the rest.
void print_overview() {
  constexpr std::size_t k_column = 25;
  std::cout << k_usage;
  for (const auto& c : commands()) {
    for (const auto& [usage, what] : c.help) {
      std::string text = what;
      for (std::size_t at = text.find('\n'); at != std::string::npos; at = text.find('\n', at + 1))
        text.insert(at + 1, std::string(k_column + 2, ' '));
      std::cout << "  " << pad(usage, k_column) << text << "\n";
    }
  }
  std::cout << k_more;
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

std::vector<command_info> command_table() {
  std::vector<command_info> out;
  for (const auto& c : commands()) {
    command_info info{c.name, {}, c.run};
    for (const auto& [usage, what] : c.help) info.help.emplace_back(usage, what);
    out.push_back(std::move(info));
  }
  return out;
}

int dispatch(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  hide_dsn_passwords(argc, argv);
  try {
    take_color_option(args);  // global: before or after the command's name
  } catch (const error& e) {
    std::cerr << "runbook: " << e.what() << "\n";
    return e.exit_code();
  }
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    print_overview();
    return args.empty() ? exit_codes::usage : exit_codes::ok;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::cout << "runbook " << RUNBOOK_VERSION << "\n";
    return 0;
  }
  std::string name = args[0];
  args.erase(args.begin());
  try {
    std::vector<std::string> names;
    for (const auto& c : commands()) {
      if (name == c.name) return c.run(std::move(args));
      names.push_back(c.name);
    }
    throw error(error_kind::usage, "unknown command '" + name + "'" + did_you_mean(name, names) +
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
