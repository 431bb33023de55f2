// Lua module: checklists — checklist "name" { { "item", check = fn }, { "item", manual = "..." } }
// read into the engine's checklist phase (run by the executor; see engine/run/executor.cpp).
#pragma once

#include "bindings/dsl.hpp"
#include "engine/run/model.hpp"

namespace rb::lua {
class sandbox;

/// Reads the checklist declared by `d` (its spec table on top of the stack) into a phase whose
/// items are steps: a check item's step runs its function (false or an error: the item
/// failed; the second result is the detail), a manual item is asked on the terminal. Throws
/// rb::error(bad_runbook) "file:line: ..." for anything wrong, before anything runs.
run::phase_def read_checklist(sandbox& sb, const declaration& d);

}  // namespace rb::lua
