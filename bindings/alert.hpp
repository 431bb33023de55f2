// Lua module: alert (alert.send).
#pragma once

namespace rb::lua {
class sandbox;
/// Registers the `alert` module: alert.send{ severity, summary, details, channel, dedup }.
void open_alert(sandbox& sb);
}  // namespace rb::lua
