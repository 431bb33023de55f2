// Lua module: db, its inside — the connection handle (ctx.db, db.connect()) shared by db.cpp,
// db_rows.cpp (db:rows) and db_sandbox.cpp (db.sandbox()).
#pragma once

#include <memory>
#include <string>

#include <lua.hpp>

#include "engine/db/connection.hpp"

namespace rb::run {
class run_context;
}

namespace rb::lua {

/// The metatable of connection handles.
inline constexpr const char* k_db_meta = "rb.db";

/// A connection as Lua holds it: the run's target (owned == null) or one of db.connect().
struct lua_db {
  std::unique_ptr<db::connection> owned;
  std::string dsn;  ///< of an owned connection (for tool_env)
  bool closed = false;
};

/// The run whose step is running; raises a usage error naming `what` outside one.
run::run_context& db_run(lua_State* L, const char* what);
/// The handle at `idx` (raises when it is not one).
lua_db* check_db(lua_State* L, int idx);
/// The handle's connection, reconnected when lost and with the run's limits applied; raises
/// when no step runs or the handle was closed.
db::connection& conn_of(lua_State* L, lua_db* h);
/// The SQL text at `idx` (raises when it is not a string).
std::string sql_arg(lua_State* L, int idx);

/// db:rows (db_rows.cpp): registers the iterator's metatable and the open-cursor table, and
/// sets `rows` in the methods table at the top of the stack.
void open_db_rows(lua_State* L);
/// db.sandbox() (db_sandbox.cpp): registers the cluster's metatable and sets `sandbox` in the
/// module table at the top of the stack.
void open_db_sandbox(lua_State* L);

}  // namespace rb::lua
