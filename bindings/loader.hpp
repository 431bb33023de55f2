// Loading a runbook file: run its top level in the sandbox, then check and convert the
// declaration into the engine's runbook_def, with errors that name the file and line.
#pragma once

#include <filesystem>
#include <string>

#include "bindings/sandbox.hpp"
#include "engine/run/model.hpp"

namespace rb::lua {

/// Loads the runbook in `file`. `expected_name` is the name its path gives it (empty: take
/// the declared name). Throws rb::error(bad_runbook) "file:line: ..." for a syntax error, an
/// unknown field, a duplicate name, a bad duration, a step without `run`, and so on.
run::runbook_def load_runbook(sandbox& sb, const std::filesystem::path& file, const std::string& expected_name);

}  // namespace rb::lua
