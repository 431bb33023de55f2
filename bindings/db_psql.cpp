// Lua module: db, method psql — a script through the real psql, for files written for psql
// (COPY ... FROM stdin data, \i and \ir, \set and :'var'). psql is another session: it runs
// with ON_ERROR_STOP and -X, the connection in PG* environment variables (never argv), the
// variables on stdin (never argv), bounded output, the step's deadline, and one `shell` audit
// record with psql = true and the script's SHA-256.
#include "bindings/db_psql.hpp"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "bindings/convert.hpp"
#include "bindings/error.hpp"
#include "engine/db/psql.hpp"
#include "engine/run/command.hpp"
#include "engine/run/context.hpp"
#include "engine/util/hash.hpp"
#include "engine/util/secrets.hpp"

namespace rb::lua {
namespace {

/// A string names a file when it ends in ".sql" and has no line break (db:script's rule);
/// anything else is SQL text. { file = "..." } and { sql = "..." } say which explicitly.
void read_script(lua_State* L, run::run_context& ctx, db::psql_request& req) {
  std::optional<std::string> file, sql;
  if (lua_type(L, 2) == LUA_TSTRING) {
    std::string arg = to_string(L, 2);
    bool named = arg.size() > 4 && arg.compare(arg.size() - 4, 4, ".sql") == 0 && arg.find('\n') == std::string::npos;
    (named ? file : sql) = arg;
  } else if (lua_type(L, 2) == LUA_TTABLE) {
    lua_getfield(L, 2, "file");
    if (lua_type(L, -1) == LUA_TSTRING) file = to_string(L, -1);
    lua_getfield(L, 2, "sql");
    if (lua_type(L, -1) == LUA_TSTRING) sql = to_string(L, -1);
    lua_pop(L, 2);
    if (file.has_value() == sql.has_value())
      raise_usage(L, error_kind::usage, "ctx.db:psql{...} takes either file = \"x.sql\" or sql = \"...\"");
  } else {
    raise_usage(L, error_kind::usage,
                "ctx.db:psql needs a .sql file (relative to the runbook's directory) or SQL text");
  }
  req.base_dir = std::filesystem::absolute(ctx.book().file).parent_path();
  if (file) req.file = db::resolve_script(req.base_dir, *file);
  else req.sql = *sql;
}

void read_options(lua_State* L, db::psql_request& req) {
  if (lua_isnoneornil(L, 3)) return;
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_getfield(L, 3, "single_transaction");
  req.single_transaction = lua_toboolean(L, -1) != 0;
  lua_pop(L, 1);
  lua_getfield(L, 3, "vars");
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {  // stack: ..., vars, name, value
      if (lua_type(L, -2) != LUA_TSTRING)
        raise_usage(L, error_kind::usage, "ctx.db:psql: vars must map names to values");
      std::string value;
      switch (lua_type(L, -1)) {
        case LUA_TSTRING: value = to_string(L, -1); break;
        case LUA_TNUMBER: {
          lua_pushvalue(L, -1);  // lua_tostring converts in place: not the key
          value = lua_tostring(L, -1);
          lua_pop(L, 1);
          break;
        }
        case LUA_TBOOLEAN: value = lua_toboolean(L, -1) ? "true" : "false"; break;
        default:
          raise_usage(L, error_kind::usage, std::string("ctx.db:psql: var '") + lua_tostring(L, -2) + "' is a " +
                                                luaL_typename(L, -1) + "; psql variables are strings");
      }
      req.vars.emplace_back(lua_tostring(L, -2), std::move(value));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    raise_usage(L, error_kind::usage, "ctx.db:psql: vars must be a table");
  }
  lua_pop(L, 1);
  std::sort(req.vars.begin(), req.vars.end());  // the same script every time
}

void set_string(lua_State* L, const char* key, const std::string& value) {
  lua_pushlstring(L, value.data(), value.size());
  lua_setfield(L, -2, key);
}

}  // namespace

int db_psql(lua_State* L, run::run_context& ctx, const std::string& dsn, bool in_transaction) {
  if (in_transaction) {
    const run::phase_def* phase = ctx.phase();
    if (phase && phase->transaction)
      raise_usage(L, error_kind::usage,
                  "ctx.db:psql runs in a separate session and cannot join the transaction of phase '" + phase->name +
                      "'; put this step in a phase without transaction = true (psql's single_transaction = true "
                      "gives it its own transaction)");
    raise_usage(L, error_kind::usage,
                "ctx.db:psql runs in a separate session and cannot join the transaction open on this connection "
                "(db:transaction); call it outside (psql's single_transaction = true gives it its own transaction)");
  }
  db::psql_request req;
  req.dsn = dsn;
  req.statement_timeout = ctx.statement_timeout();
  req.lock_timeout = ctx.lock_timeout();
  read_script(L, ctx, req);
  read_options(L, req);
  std::string what = req.file ? "ctx.db:psql('" + req.file->string() + "')" : "ctx.db:psql(SQL text)";
  std::string sha = req.file ? sha256_file(req.base_dir / *req.file) : sha256_hex(req.sql);
  shell::process_options o = db::psql_process(req);
  o.output_limit = std::size_t{1} << 20;
  json vars = json::object();
  for (const auto& [name, value] : req.vars) vars[name] = secrets::redact(value);
  json extra = {{"psql", true}, {"psql_bin", o.argv[0]}, {"sha256", sha},
                {"single_transaction", req.single_transaction}, {"vars", vars}};
  if (req.file) extra["file"] = req.file->string();
  else extra["sql"] = secrets::redact(req.sql.size() <= 2048 ? req.sql : req.sql.substr(0, 2048) + "...");
  shell::process_result r = run::run_command(ctx, o, false, std::move(extra));  // bounded, audited
  db::check_psql_result(req, r, what, o.timeout);
  lua_createtable(L, 0, 5);
  set_string(L, "stdout", r.out);
  set_string(L, "stderr", r.err);
  set_string(L, "sha256", sha);
  if (req.file) set_string(L, "file", req.file->string());
  lua_pushnumber(L, static_cast<double>(r.duration.count()) / 1000.0);
  lua_setfield(L, -2, "duration");
  return 1;
}

}  // namespace rb::lua
