// Lua module: secret "NAME" — a value from the environment or a file, redacted everywhere.
#pragma once

namespace rb::lua {
class sandbox;
/// Registers the global `secret`.
void open_secret(sandbox& sb);
}  // namespace rb::lua
