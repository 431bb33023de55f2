// Type conversion: Lua values and JSON, Lua values as bound SQL parameters, and SQL fields
// (text output, typed by the column's OID) as Lua values.
#pragma once

#include <string>
#include <vector>

#include <lua.hpp>
#include <nlohmann/json.hpp>

#include "engine/db/connection.hpp"

namespace rb::lua {

using json = nlohmann::json;

/// A Lua value as JSON: tables with keys 1..n become arrays, other tables objects; functions
/// and userdata become "<function>" / "<userdata>". Nesting and size are bounded (`depth`).
json to_json(lua_State* L, int idx, int depth = 8);
/// Pushes a JSON value as Lua (null -> nil, arrays -> sequences, objects -> tables).
void push_json(lua_State* L, const json& value);
/// The string at idx, or "" when it is not a string.
std::string to_string(lua_State* L, int idx);

/// Registers db.null, the one sentinel for SQL NULL (nil cannot live in a row table).
void open_null(lua_State* L);
/// Pushes db.null.
void push_null(lua_State* L);
/// True when the value at idx is db.null.
bool is_null(lua_State* L, int idx);
/// A Lua number as SQL text: integral values below 1e15 without exponent or fraction.
std::string sql_number(double d);
/// Lua values from `first` to the top as bound parameters: nil and db.null are NULL, tables
/// JSON; raises for a function, thread or other userdata.
std::vector<db::param> params_from(lua_State* L, int first);
/// Pushes a field typed by its column's OID: integers and floats as numbers, numeric as a number
/// when exact (else a string), bool, json/jsonb as tables, timestamps as ISO 8601 strings,
/// arrays as sequences, NULL as db.null.
void push_field(lua_State* L, const db::column& c, const db::field& f);
/// Pushes a row as a table keyed by column name.
void push_row(lua_State* L, const std::vector<db::column>& cols, const std::vector<db::field>& row);

}  // namespace rb::lua
