// Resume after a crash: what became of the work the crash interrupted. A transactional phase
// whose COMMIT was under way is settled by asking the server; a step interrupted outside a
// transaction is verified, re-run only when that is safe or the operator says so.
//
// The guarantee, per kind of step:
//   - in a transactional phase: exactly once. The phase's transaction id is journaled (fsynced)
//     before COMMIT is sent; on resume, pg_xact_status says committed (the phase is done),
//     aborted (it runs again) or neither (in doubt: the operator decides, nothing is guessed).
//   - outside a transaction: at most once, unless the step is declared idempotent = true (then
//     at least once), or its verify shows the work done (then exactly once). An interrupted
//     step with neither waits for --rerun-interrupted or --mark-interrupted-done.
#pragma once

#include <string>

#include "engine/db/xact.hpp"
#include "engine/run/executor.hpp"
#include "engine/run/journal.hpp"
#include "engine/run/model.hpp"
#include "engine/run/reporter.hpp"
#include "engine/run/target.hpp"

namespace rb::run {

/// What became of transaction `xid`, asked on the target. While its COMMIT still runs on the
/// server (a slow deferred trigger), waits up to `patience` on the run's clock `clk`, polling,
/// and stops waiting when `stop` is requested. Throws when the server
/// cannot be asked (the run stays open: resume again).
db::xact_fate settle_commit(target_session& target, const std::string& xid, milliseconds patience, reporter& out,
                            rb::clock& clk, const stop_source& stop);

/// The in_doubt error of a phase whose COMMIT the server could not settle (`fate` is
/// in_progress or unknown): what is known, and what the operator should do.
step_error commit_in_doubt(const runbook_def& book, const phase_def& phase, const std::string& run_id,
                           const std::string& xid, db::xact_fate fate, milliseconds patience);

/// Throws rb::error(usage), before anything runs, when a step was interrupted outside a
/// transaction and nothing says how to go on: no verify, not idempotent, and neither
/// opts.rerun_interrupted nor opts.mark_interrupted_done. The message names the step and
/// the ways on.
void require_decided(const runbook_def& book, const run_state& state, const run_options& opts);

}  // namespace rb::run
