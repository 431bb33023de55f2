// Lua module: shell — shell.run{argv...} (no shell) and shell.sh "script" (/bin/sh, by name).
#pragma once

namespace rb::lua {
class sandbox;
/// Registers the `shell` module.
void open_shell(sandbox& sb);

}  // namespace rb::lua
