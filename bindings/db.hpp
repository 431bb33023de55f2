// Lua module: db — ctx.db and db.connect(): query, rows, exec, scalar, explain, script,
// transaction, savepoint, lock, notices, close, tool_env, psql (bindings/db_psql.cpp); db.null.
#pragma once

#include <lua.hpp>

namespace rb::lua {
class sandbox;

/// Registers the `db` module (db.null, db.connect) and the connection methods.
void open_db(sandbox& sb);
/// Pushes the ctx.db object for the run's target.
void push_ctx_db(lua_State* L);
/// Closes cursors that `rows` iterators left open (a loop ended with break) after a call.
void close_open_cursors(lua_State* L);

}  // namespace rb::lua
