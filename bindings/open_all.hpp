// Opens every Lua module of runbook in a sandbox: the table of contents of the bindings.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "bindings/sandbox.hpp"

namespace rb::lua {

/// The stdlib directory: $RUNBOOK_STDLIB, else <exe dir>/../share/runbook/stdlib, else the
/// source tree's stdlib/.
std::filesystem::path stdlib_dir();

/// A sandbox with every module opened, whose `require` sees stdlib and then `extra_paths`
/// (the runbook search path's lib/ directories).
std::unique_ptr<sandbox> make_sandbox(const std::vector<std::filesystem::path>& extra_paths);

/// Opens the modules, in order: dsl (runbook, phase, step, check), audit, secret, db.
void open_all(sandbox& sb);

}  // namespace rb::lua
