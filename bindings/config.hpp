// Loading the configuration file (runbook.lua): sandboxed Lua that returns a table.
#pragma once

#include <filesystem>
#include <optional>

#include "bindings/sandbox.hpp"
#include "engine/run/config.hpp"

namespace rb::lua {

/// Loads `file` (--config), or ./runbook.lua when it exists, or returns an empty config.
/// Throws rb::error(bad_runbook) naming the file and the field for anything malformed.
run::config load_config(sandbox& sb, const std::optional<std::filesystem::path>& file);

}  // namespace rb::lua
