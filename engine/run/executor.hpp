// The executor: runs a runbook's phases and steps, journals every state change before acting,
// retries, compensates completed steps in reverse on failure, and resumes interrupted runs.
#pragma once

#include <optional>
#include <string>

#include "engine/alert/notification.hpp"
#include "engine/audit/log.hpp"
#include "engine/run/confirm.hpp"
#include "engine/run/journal.hpp"
#include "engine/run/model.hpp"
#include "engine/run/reporter.hpp"
#include "engine/run/stop.hpp"
#include "engine/run/target.hpp"
#include "engine/util/clock.hpp"

namespace rb::run {

/// Final states of a run, as written in run.end.
namespace status {
inline constexpr std::string_view succeeded = "succeeded";
/// Every step ran, but some failed with on_error = "continue" (exit code 4).
inline constexpr std::string_view succeeded_with_failures = "succeeded_with_failures";
inline constexpr std::string_view failed = "failed";
inline constexpr std::string_view rolled_back = "rolled_back";
inline constexpr std::string_view rollback_failed = "rollback_failed";
inline constexpr std::string_view cancelled = "cancelled";
/// A guard said no before the first phase: nothing ran (exit code 0).
inline constexpr std::string_view skipped = "skipped";
}  // namespace status

/// The CLI exit code for a run's final status.
int exit_code_for(std::string_view run_status);

struct run_options {
  json params = json::object();  ///< typed values (resolve_params)
  bool yes = false;              ///< --yes: destructive steps are confirmed
  bool dry_run = false;
  std::string reason;            ///< --reason, recorded in run.start
  bool force = false;            ///< resume although the runbook file changed
  bool no_rollback = false;      ///< on cancel, stop without running the rollback path
  bool rehearsal = false;        ///< a `runbook rehearse` run, on a copy (marked in run.start)
  /// Resume: run a step interrupted outside a transaction again (--rerun-interrupted) ...
  bool rerun_interrupted = false;
  /// ... or take its work as done (--mark-interrupted-done): the operator checked.
  bool mark_interrupted_done = false;
  /// Resume: how long to wait for a COMMIT still running on the server to finish.
  milliseconds commit_patience{60'000};
};

struct run_outcome {
  std::string run_id;
  std::string status;
  std::optional<step_error> error;  ///< the failure that ended the run, if any
  std::string failed_step;          ///< "phase/step" of that failure
  std::vector<std::string> continued;  ///< steps that failed with on_error = "continue"
  std::string skip_reason;          ///< status skipped: what the guard that said no said
  milliseconds duration{0};
  bool rolled_back = false;         ///< the rollback path ran (after a failure or a cancel)
  int exit_code() const { return exit_code_for(status); }
  json to_json() const;
};

/// Refuses (rb::error(usage), before anything runs) a runbook whose destructive steps cannot be
/// confirmed: no --yes and nobody at a terminal. Steps with a `when` are checked when reached.
void require_confirmable(const runbook_def& book, const run_options& opts, const confirmer& confirm);

/// Prints what a run would do, without running any runbook code or writing the audit log.
void print_dry_run(const runbook_def& book, const run_options& opts, reporter& out);

/// Runs one run at a time, with its own services: the clock `clk` (deadlines, backoff, commit
/// patience) and a stop token. Two executors in one process (two threads) never see each
/// other's cancel or deadline.
class executor {
 public:
  executor(audit::log& log, reporter& out, clock& clk, confirmer& confirm);
  /// The stop token of this executor's runs: request() stops the run in progress (its step
  /// interrupted, its SQL cancelled, its shell commands killed), which records it and rolls
  /// back (or not, with run_options::no_rollback). A request made before a run starts stops
  /// it before its first step. The CLI forwards SIGINT/SIGTERM to it (cancel::forward).
  stop_source& stop() { return *m_stop; }
  /// Uses `stop` (owned by the caller, e.g. a scheduler's per-run token) instead of its own.
  void use_stop(stop_source& stop) { m_stop = &stop; }
  /// The database target: transactional phases, savepoints, the run lock and ctx.db use it.
  void use_target(target_session& target) { m_target = &target; }
  /// The configuration, for db.connect("other-target").
  void use_config(const config& cfg) { m_config = &cfg; }
  /// Where alerts and incident notifications go (ctx.notifier()); may stay null.
  void use_notifier(alert::notifier* n) { m_notifier = n; }

  /// Runs the runbook from the start. Throws rb::error(usage) before anything runs when a
  /// destructive step cannot be confirmed.
  run_outcome run(const runbook_def& book, const run_options& opts);

  /// Continues an interrupted run from its first unfinished step; never re-runs a finished
  /// one. A transactional phase whose COMMIT was under way is settled by asking the server
  /// (see recovery.cpp); a step interrupted outside a transaction is verified, or re-run only
  /// when idempotent or opts.rerun_interrupted. Throws rb::error(usage) when the run already
  /// ended, when the runbook file changed since the run started (unless opts.force), or when
  /// an interrupted step needs the operator's decision.
  run_outcome resume(const runbook_def& book, const run_state& state, const run_options& opts);

  /// Runs the rollback path of a finished or interrupted run: the rollback handlers of its
  /// completed steps not yet rolled back, in reverse; only those of `phase` when given.
  run_outcome rollback(const runbook_def& book, const run_state& state, const run_options& opts,
                       const std::optional<std::string>& phase);

 private:
  struct step_ref {
    const phase_def* phase;
    const step_def* step;
  };
  enum class step_status { succeeded, skipped, failed };
  enum class recovery { done, rerun };
  struct step_result {
    step_status status;
    std::optional<step_error> error;
    json value = nullptr;  ///< what a succeeded step's run returned
  };

  /// One item of a checklist phase, as it came out (checklist.cpp).
  struct checklist_item {
    const step_def* item;
    std::string outcome;  ///< passed | failed | confirmed | unconfirmed | cancelled
    json detail;
    std::optional<step_error> error;
  };

  run_outcome execute(const runbook_def& book, const run_options& opts, const run_state* resumed);
  /// Checks one item of a checklist (its check as a step, or a person's answer) and audits
  /// `checklist.item`; `finish_checklist` audits `checklist.end` and prints the list, and
  /// returns the error that fails the phase when a check failed (checklist.cpp).
  checklist_item check_item(class run_context& ctx, const runbook_def& book, const phase_def& phase,
                            const step_def& item, const run_options& opts, std::size_t index, std::size_t total);
  std::optional<step_error> finish_checklist(class run_context& ctx, const phase_def& phase,
                                             const std::vector<checklist_item>& items);
  step_result execute_step(class run_context& ctx, const runbook_def& book, const phase_def& phase,
                           const step_def& step, on_error policy, const run_options& opts,
                           std::size_t index, std::size_t total);
  /// Sets the context's deadline and database timeouts for a call of the step's code.
  void arm(class run_context& ctx, const runbook_def& book, const phase_def& phase, const step_def& step,
           step_call& call) const;
  /// Resume of a step interrupted outside a transaction: its verify says done, or it may run
  /// again; throws rb::error(usage) when neither and the operator did not decide (recovery.cpp).
  recovery recover_interrupted(class run_context& ctx, const runbook_def& book, const phase_def& phase,
                               const step_def& step, const run_options& opts, std::size_t index, std::size_t total);
  /// Runs the rollback handlers of `done` in reverse; returns false when one failed.
  bool compensate(class run_context& ctx, const runbook_def& book, const std::vector<step_ref>& done,
                  const run_state* resumed, std::optional<step_error>& failure, int& undone);
  std::optional<std::chrono::steady_clock::time_point> deadline_for(const runbook_def& book,
                                                                    const phase_def& phase,
                                                                    const step_def& step) const;

  audit::log& m_log;
  target_session* m_target = nullptr;
  const config* m_config = nullptr;
  alert::notifier* m_notifier = nullptr;
  reporter& m_out;
  clock& m_clock;
  confirmer& m_confirm;
  stop_source m_own_stop;
  stop_source* m_stop = &m_own_stop;
};

}  // namespace rb::run
