// The runbook model the executor runs: runbook, phases, steps, params, retry policy.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"

namespace rb::trigger {
struct watch_def;
}

namespace rb::run {

using json = nlohmann::json;
using std::chrono::milliseconds;

/// Where something was declared: "runbooks/migration/centralized.lua:42".
struct source_loc {
  std::string file;
  int line = 0;
  std::string str() const { return line > 0 ? file + ":" + std::to_string(line) : file; }
};

enum class param_type { string, integer, number, boolean, enumeration, duration };

/// One declared parameter (`params = { batch = { type = "integer", default = 1000 } }`).
struct param_spec {
  std::string name;
  param_type type = param_type::string;
  std::optional<std::string> default_text;  ///< the default as the user would type it
  std::vector<std::string> values;          ///< allowed values of an enum
  std::string doc;
  bool required = false;                    ///< no default and required = true
  source_loc where;
};

/// What happens when a step fails for good: compensate, stop as is, or go on.
enum class on_error { rollback, abort, cont };
enum class backoff_kind { fixed, exponential };

/// `retry = { attempts = 3, backoff = "exponential", initial = "1s", max = "30s", on = {...} }`.
struct retry_policy {
  int attempts = 1;
  backoff_kind backoff = backoff_kind::exponential;
  milliseconds initial{1000};
  milliseconds max{60'000};
  std::vector<std::string> on;  ///< error classes, kinds or SQLSTATE patterns ("08*"); empty = any
};

/// A failure raised by runbook code, with the structure the Lua error table had.
struct step_error {
  error_kind kind = error_kind::step_failed;
  std::string klass;      ///< finer class: "unique_violation", "timeout", "check" ...
  std::string message;
  std::string sqlstate, detail, hint;
  std::string statement;  ///< the SQL that failed, when a statement did
  std::string source;     ///< file of the raising code
  int line = 0;
  std::string traceback;
  /// JSON for the audit log (no traceback).
  json to_json() const;
  /// One readable line: "check failed: no users (runbooks/x.lua:12)".
  std::string describe() const;
};

class run_context;
struct step_def;
struct phase_def;
struct runbook_def;

/// What the executor hands to a step's code for one call.
struct step_call {
  const runbook_def& book;
  const phase_def& phase;
  const step_def& step;
  int attempt = 1;
  std::optional<std::chrono::steady_clock::time_point> deadline;
  run_context* ctx = nullptr;
};

/// The outcome of calling one piece of runbook code.
struct call_result {
  std::optional<step_error> error;  ///< set when the code raised
  json value;                       ///< what it returned, summarised for the audit
  bool ok() const { return !error; }
};

/// A step's code, supplied by the bindings (Lua functions); the engine knows no Lua.
class step_body {
 public:
  virtual ~step_body() = default;
  virtual call_result run(const step_call& call) = 0;
  /// Checks the result of the last successful run.
  virtual call_result verify(const step_call& call) = 0;
  virtual call_result rollback(const step_call& call) = 0;
  /// value: true to run the step; false or a reason string to skip it.
  virtual call_result when(const step_call& call) = 0;
};

/// A guard's code, supplied by the bindings (a Lua function returning ok, reason).
class guard_body {
 public:
  virtual ~guard_body() = default;
  /// value: {"ok": bool, "reason": string or null}; error when the guard raised or returned
  /// something other than a boolean (a broken guard, not a "no").
  virtual call_result check(const step_call& call) = 0;
};

/// `guard = function(ctx) return ok, reason end`, or a list of them, on a runbook or a phase:
/// checked in order before it runs; the first that says no skips it (the run ends `skipped`,
/// a phase ends `skipped` and the run goes on).
struct guard_def {
  source_loc where;  ///< the runbook or phase that declares it
  std::shared_ptr<guard_body> body;
};

struct step_def {
  std::string name;
  std::string description;
  source_loc where;
  bool has_verify = false, has_rollback = false, has_when = false;
  /// Running it twice does no harm: a resume re-runs it when it was interrupted outside a
  /// transaction (other such steps are verified, or wait for the operator's decision).
  bool idempotent = false;
  std::optional<milliseconds> timeout;
  retry_policy retry;
  std::optional<on_error> on_err;
  std::optional<std::string> confirm;  ///< destructive: text shown when asking
  /// Not confirmed (declined, or nobody to ask): true records the step skipped and the run goes
  /// on (an incident playbook keeps its diagnosis); false fails the run (a migration's default).
  bool skip_on_decline = false;
  std::optional<milliseconds> statement_timeout, lock_timeout;  ///< per-step database limits
  /// A checklist's manual item: what a person confirms on the terminal (it has no body).
  std::optional<std::string> manual;
  std::shared_ptr<step_body> body;
};

/// Runbook code outside steps (a watch's metric, condition and action functions) reaches the
/// run it belongs to through this: the executor enters the run before the watch samples and
/// leaves it after, so that code sees ctx, logs and audits like a step's.
class code_scope {
 public:
  virtual ~code_scope() = default;
  virtual void enter(run_context* ctx) = 0;  ///< null: leave
};

struct phase_def {
  std::string name;
  std::string description;
  source_loc where;
  std::optional<milliseconds> timeout;
  std::optional<on_error> on_err;
  bool transaction = false;  ///< one transaction for the phase; each step in a savepoint
  /// A checklist (`checklist "name" { ... }`): every item is checked or asked, each outcome
  /// audited (checklist.item, checklist.end); a failed check fails the phase once all ran.
  bool checklist = false;
  std::vector<guard_def> guards;  ///< checked before the phase starts; a no skips the phase
  std::vector<step_def> steps;
  /// A watch phase (`watch "name" { ... }`): samples metrics and acts on its triggers instead
  /// of running steps (engine/run/watch_phase); `scope` runs its functions in the run.
  std::shared_ptr<const trigger::watch_def> watch;
  std::shared_ptr<code_scope> scope;
};

/// `schedule = "0 3 * * *"` or `{ cron, tz, missed, params, target }`: when the scheduler
/// (`runbook schedule`) starts the runbook. Checked at load (engine/schedule/cron parses it).
struct schedule_def {
  std::string cron;
  std::string tz = "UTC";              ///< IANA zone the cron reads in
  bool missed_once = false;            ///< after downtime: run the latest missed time once (else skip)
  json params = json::object();        ///< --param values of the scheduled runs
  std::optional<std::string> target;   ///< a target, a glob or a list ("shard-*", "a,b"); else the runbook's
  source_loc where;
};

struct runbook_def {
  std::string name;
  std::string title, description;
  std::vector<std::string> tags;
  std::filesystem::path file;
  std::string file_sha256;
  source_loc where;
  std::vector<param_spec> params;
  on_error on_err = on_error::rollback;
  std::optional<std::string> target;       ///< default database target (a config name)
  bool lock = false;                       ///< one run per (runbook, target) at a time
  /// The escalation policy (a config name) an incident uses when a run of it fails; else the
  /// config's default_escalation.
  std::optional<std::string> escalation;
  std::optional<std::filesystem::path> fixture;  ///< SQL that seeds a --sandbox database
  /// Tables the runbook keeps a history in (`log_tables = { "migration_log" }`), which its
  /// rollback leaves on purpose: a rehearsal reports rows added there as notes, not differences.
  std::vector<std::string> log_tables;
  milliseconds timeout{10 * 60 * 1000};  ///< default per-step time limit
  std::vector<guard_def> guards;          ///< checked before the first phase; a no skips the run
  std::optional<schedule_def> schedule;   ///< when `runbook schedule` starts it
  std::size_t step_count() const {
    std::size_t n = 0;
    for (const auto& p : phases) n += p.steps.size();
    return n;
  }
  std::vector<phase_def> phases;
};

std::string_view to_string(param_type t);
std::string_view to_string(on_error e);
std::optional<on_error> on_error_from(std::string_view s);

/// The step_error for an exception the engine threw: database failures keep their SQLSTATE,
/// class, detail, hint and statement; engine errors their kind; anything else is internal.
step_error step_error_from(const std::exception& e);

/// "step 'users' of phase 'migrate' of runbook 'migration.centralized' (file:line)".
std::string describe_step(const runbook_def& book, const phase_def& phase, const step_def& step);

}  // namespace rb::run
