// Type conversion between Lua values and JSON (params in, results and fields out).
#pragma once

#include <string>

#include <lua.hpp>
#include <nlohmann/json.hpp>

namespace rb::lua {

using json = nlohmann::json;

/// A Lua value as JSON: tables with keys 1..n become arrays, other tables objects; functions
/// and userdata become "<function>" / "<userdata>". Nesting and size are bounded (`depth`).
json to_json(lua_State* L, int idx, int depth = 8);
/// Pushes a JSON value as Lua (null -> nil, arrays -> sequences, objects -> tables).
void push_json(lua_State* L, const json& value);
/// The string at idx, or "" when it is not a string.
std::string to_string(lua_State* L, int idx);

}  // namespace rb::lua
