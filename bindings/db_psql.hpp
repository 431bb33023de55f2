// Lua module: db, method psql — ctx.db:psql(file_or_sql, { vars = {...}, single_transaction = true }).
#pragma once

#include <string>

#include <lua.hpp>

namespace rb::run {
class run_context;
}

namespace rb::lua {

/// The body of db:psql for a connection to `dsn`; the arguments are at 2 (the file or SQL) and
/// 3 (the options). `in_transaction`: that connection has a transaction open, which psql (a
/// session of its own) cannot join, so the call is refused. Pushes the result table.
int db_psql(lua_State* L, run::run_context& ctx, const std::string& dsn, bool in_transaction);

}  // namespace rb::lua
