// Lua module: shell — shell.run{argv...} (no shell) and shell.sh "script" (/bin/sh, by name).
#pragma once

#include <nlohmann/json.hpp>

#include "engine/shell/process.hpp"

namespace rb::run {
class run_context;
}

namespace rb::lua {
class sandbox;
/// Registers the `shell` module.
void open_shell(sandbox& sb);

/// Bounds a process by the running step's deadline (the shorter of it and `o.timeout`) and
/// lets the operator's interrupt kill it. Every process a runbook starts goes through this.
void bound_by_step(run::run_context& ctx, shell::process_options& o);
/// Writes the `shell` audit record of a finished process: argv and env with secrets
/// redacted, exit code, signal, duration, output tails and sizes, phase and step, plus
/// `extra` fields (ctx.db:psql adds psql, file, sha256 ...).
void audit_process(run::run_context& ctx, const shell::process_options& o, const shell::process_result& r,
                   bool via_shell, nlohmann::json extra = nlohmann::json::object());
}  // namespace rb::lua
