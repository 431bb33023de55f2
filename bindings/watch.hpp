// Lua module: watches — watch "name" { every, lasting, metrics, trigger "t" { ... } } read into
// the engine's watch phase, and investigate{ window, unless, action }.
#pragma once

#include "bindings/dsl.hpp"
#include "engine/run/model.hpp"

namespace rb::lua {
class sandbox;

/// Registers investigate{...} (watch, trigger are declarations: see open_dsl).
void open_watch(sandbox& sb);

/// Reads the watch declared by `d` (its spec table on top of the stack) into a watch phase:
/// metrics (SQL text or functions), triggers with their conditions parsed and checked against
/// the metric names, actions. Throws rb::error(bad_runbook) "file:line: ..." for anything
/// wrong, before anything runs. `every` and `lasting` may name a duration param of `book`
/// (`lasting = { param = "watch_for" }`): its default is checked here, the run's value is used.
run::phase_def read_watch(sandbox& sb, const declaration& d, const run::runbook_def& book);

}  // namespace rb::lua
