// Lua module: escalate{...} — opens or raises an incident from runbook code.
#pragma once

namespace rb::lua {
class sandbox;
/// Registers the global `escalate{ level, policy, summary, severity, cause }`.
void open_escalate(sandbox& sb);
}  // namespace rb::lua
