// A watch phase in a run: the watch runner (engine/trigger/watch) given the run's services.
//
// Samples are read on a connection of the watch's own (never the run's session, so a watch
// never waits behind or inside the run's transaction), with the watch's short statement
// timeout; its records go to the run's journal; escalate{} opens incidents and alert{} sends
// on the run's channels; waits read the run's clock and end at its stop token.
#pragma once

#include "engine/run/context.hpp"
#include "engine/run/journal.hpp"
#include "engine/trigger/watch.hpp"

namespace rb::run {

/// The watch as this run runs it: `every` / `lasting` taken from the run's params when the
/// watch names them (`lasting = { param = "watch_for" }`).
trigger::watch_def watch_for_run(const trigger::watch_def& w, const json& params);

/// Runs the watch of `phase` to its end in the run `ctx`; when `resumed`, from where the
/// journal left it (the remaining time, the triggers' state, no action taken twice).
trigger::watch_result run_watch(run_context& ctx, const phase_def& phase, const run_state* resumed);

}  // namespace rb::run
