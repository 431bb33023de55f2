// Lua module: audit (audit.note).
#pragma once

namespace rb::lua {
class sandbox;
/// Registers the `audit` module: audit.note(message [, fields]).
void open_audit(sandbox& sb);
}  // namespace rb::lua
