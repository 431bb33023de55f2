// Lua module (part of string): find, match, gmatch and gsub with Lua 5.1 patterns, bounded.
#pragma once

#include <lua.hpp>

namespace rb::lua {

/// Replaces find, match, gmatch and gsub in the string table on top of the stack with
/// versions that check the running call's deadline and the operator's cancel while they
/// match, so a catastrophic pattern (backtracking over "a*a*a*...b") stops at the step's time
/// limit like any Lua loop. Same patterns and results as LuaJIT's.
void open_bounded_patterns(lua_State* L);  // stack: string table

}  // namespace rb::lua
