// Lua module: db — the database as runbooks use it. Parameters are always bound ($1, $2 ...),
// never spliced into SQL. Values come back typed (bindings/convert.cpp): integers and floats as
// numbers, numeric as a number when exact (else a string), bool, json/jsonb as tables,
// timestamps as ISO 8601 strings, arrays as sequences, and NULL as db.null. db:rows is in
// db_rows.cpp, db.sandbox() in db_sandbox.cpp, db:psql in db_psql.cpp.
#include "bindings/db.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bindings/convert.hpp"
#include "bindings/db_module.hpp"
#include "bindings/db_psql.hpp"
#include "bindings/error.hpp"
#include "bindings/sandbox.hpp"

#include "engine/db/advisory_lock.hpp"
#include "engine/db/cluster.hpp"  // pg_bin
#include "engine/db/psql.hpp"
#include "engine/run/context.hpp"

namespace rb::lua {

run::run_context& db_run(lua_State* L, const char* what) {
  run::run_context* ctx = sandbox::from(L).current_run();
  if (!ctx) raise_usage(L, error_kind::usage, std::string(what) + " can only be used while a step runs");
  return *ctx;
}

lua_db* check_db(lua_State* L, int idx) { return static_cast<lua_db*>(luaL_checkudata(L, idx, k_db_meta)); }

db::connection& conn_of(lua_State* L, lua_db* h) {
  run::run_context& ctx = db_run(L, "the database");
  if (h->closed) raise_usage(L, error_kind::usage, "this connection was closed");
  if (h->owned) {
    if (!h->owned->is_open()) h->owned->reconnect();
    ctx.apply_limits(*h->owned);
    return *h->owned;
  }
  return ctx.database();
}

std::string sql_arg(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TSTRING) raise_usage(L, error_kind::usage, "SQL text expected as a string");
  return to_string(L, idx);
}

namespace {

// ---- methods ---------------------------------------------------------------------------

int l_db_query(lua_State* L) {
  lua_db* h = check_db(L, 1);
  std::string sql = sql_arg(L, 2);
  auto params = params_from(L, 3);
  db::result r = conn_of(L, h).exec(sql, params);
  lua_createtable(L, static_cast<int>(r.rows.size()), 0);
  int n = 0;
  for (const auto& row : r.rows) {
    push_row(L, r.columns, row);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

int l_db_exec(lua_State* L) {
  lua_db* h = check_db(L, 1);
  std::string sql = sql_arg(L, 2);
  auto params = params_from(L, 3);
  db::result r = conn_of(L, h).exec(sql, params);
  lua_pushnumber(L, static_cast<lua_Number>(r.affected));
  return 1;
}

int l_db_scalar(lua_State* L) {
  lua_db* h = check_db(L, 1);
  std::string sql = sql_arg(L, 2);
  auto params = params_from(L, 3);
  db::result r = conn_of(L, h).exec(sql, params);
  if (r.rows.empty() || r.columns.empty()) {
    lua_pushnil(L);
    return 1;
  }
  push_field(L, r.columns[0], r.rows[0][0]);
  return 1;
}

int l_db_explain(lua_State* L) {
  lua_db* h = check_db(L, 1);
  std::string sql = sql_arg(L, 2);
  auto params = params_from(L, 3);
  db::result r = conn_of(L, h).exec("EXPLAIN " + sql, params);
  std::string plan;
  std::vector<std::string> indexes;
  bool seq_scan = false;
  for (const auto& row : r.rows) {
    const std::string& line = row[0].text;
    plan += line + "\n";
    // "Index Scan using idx on t", "Index Only Scan using idx on t", "Bitmap Index Scan on idx"
    std::size_t at = std::string::npos, skip = 0;
    if (line.find("Bitmap Index Scan on ") != std::string::npos) {
      at = line.find("Bitmap Index Scan on ");
      skip = 21;
    } else if (line.find("Index") != std::string::npos && line.find(" using ") != std::string::npos) {
      at = line.find(" using ");
      skip = 7;
    }
    if (at != std::string::npos) {
      std::string rest = line.substr(at + skip);
      indexes.push_back(rest.substr(0, rest.find_first_of(" (")));
    }
    if (line.find("Seq Scan") != std::string::npos) seq_scan = true;
  }
  lua_createtable(L, 0, 4);
  lua_pushlstring(L, plan.data(), plan.size());
  lua_setfield(L, -2, "plan");
  lua_pushboolean(L, !indexes.empty());
  lua_setfield(L, -2, "uses_index");
  lua_pushboolean(L, seq_scan);
  lua_setfield(L, -2, "seq_scan");
  lua_newtable(L);
  for (std::size_t i = 0; i < indexes.size(); ++i) {
    lua_pushstring(L, indexes[i].c_str());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  lua_setfield(L, -2, "indexes");
  return 1;
}

/// script(path_or_text [, { file = "name.sql" }]): a .sql file (relative to the runbook's
/// directory) or SQL text, sent as one simple-protocol query (see connection::script); errors
/// name the file (for text: `file`, when given) and the line in it.
int l_db_script(lua_State* L) {
  lua_db* h = check_db(L, 1);
  std::string arg = sql_arg(L, 2);
  run::run_context& ctx = db_run(L, "db:script");
  std::string sql = arg;
  std::string source;  // the file, as the runbook names it
  if (lua_type(L, 3) == LUA_TTABLE) {
    lua_pushliteral(L, "file");
    lua_rawget(L, 3);  // raw: never the runbook's __index
    if (lua_type(L, -1) == LUA_TSTRING) source = to_string(L, -1);
    else if (!lua_isnil(L, -1)) raise_usage(L, error_kind::usage, "db:script: file must be a string (a name for the text)");
    lua_pop(L, 1);
  } else if (!lua_isnoneornil(L, 3)) {
    raise_usage(L, error_kind::usage, "db:script: the second argument is a table of options, e.g. { file = \"x.sql\" }");
  }
  if (arg.size() > 4 && arg.substr(arg.size() - 4) == ".sql" && arg.find('\n') == std::string::npos) {
    source = arg;
    // Inside the runbook's directory, as db:psql's files (no absolute paths, no "../" out of it).
    std::filesystem::path dir = ctx.book().file.parent_path();
    std::filesystem::path file = dir / db::resolve_script(dir, arg);
    std::ifstream in(file, std::ios::binary);
    if (!in) raise_usage(L, error_kind::io, "unable to read SQL script '" + file.string() + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    sql = ss.str();
  }
  conn_of(L, h).script(sql, source);
  return 0;
}

/// Calls the function at `fn` protected; returns true on success (its results discarded).
bool call_protected(lua_State* L, int fn) {
  lua_pushvalue(L, fn);
  return lua_pcall(L, 0, 0, 0) == 0;
}

/// The connection of `h` again after runbook code ran: null when that code closed it (the
/// reference taken before is dangling then: close() destroyed the connection).
db::connection* still_open(lua_State* L, lua_db* h) {
  if (h->closed) return nullptr;
  if (h->owned) return h->owned.get();
  run::run_context* ctx = sandbox::from(L).current_run();
  return ctx ? &ctx->database() : nullptr;
}

int l_db_transaction(lua_State* L) {
  lua_db* h = check_db(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  db::connection& c = conn_of(L, h);
  bool nested = c.in_transaction();
  // Inside an open transaction (a transactional phase) this becomes a savepoint.
  if (nested) c.savepoint("rb_tx");
  else c.begin();
  if (call_protected(L, 2)) {
    db::connection& again = conn_of(L, h);
    if (nested) again.release("rb_tx");
    else again.commit();
    return 0;
  }
  // stack: ..., err
  try {
    if (db::connection* open = still_open(L, h)) {
      if (nested) open->rollback_to("rb_tx");
      else open->rollback();
    }
  } catch (const std::exception&) {
    // the session is gone: its transaction went with it
  }
  return lua_error(L);
}

int l_db_savepoint(lua_State* L) {
  lua_db* h = check_db(L, 1);
  std::string name = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  db::connection& c = conn_of(L, h);
  if (!c.in_transaction())
    raise_usage(L, error_kind::usage, "db:savepoint('" + name + "') needs an open transaction (use db:transaction or a transaction = true phase)");
  c.savepoint(name);
  if (call_protected(L, 3)) {
    conn_of(L, h).release(name);
    return 0;
  }
  try {
    if (db::connection* open = still_open(L, h)) open->rollback_to(name);
  } catch (const std::exception&) {
  }
  return lua_error(L);
}

int l_db_lock(lua_State* L) {
  lua_db* h = check_db(L, 1);
  std::string key = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  db::connection& c = conn_of(L, h);
  std::string k = std::to_string(db::advisory_key(key));
  c.exec("SELECT pg_advisory_lock($1::bigint)", {k});
  bool ok = call_protected(L, 3);
  try {
    conn_of(L, h).exec("SELECT pg_advisory_unlock($1::bigint)", {k});
  } catch (const std::exception&) {
    // a lost session released the lock with it
  }
  if (!ok) return lua_error(L);
  return 0;
}

int l_db_notices(lua_State* L) {
  lua_db* h = check_db(L, 1);
  auto notices = conn_of(L, h).take_notices();
  lua_createtable(L, static_cast<int>(notices.size()), 0);
  for (std::size_t i = 0; i < notices.size(); ++i) {
    lua_pushlstring(L, notices[i].data(), notices[i].size());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  return 1;
}

/// db:fingerprint{ schemas = {...}, data = true }: stdlib's fingerprint.take on this connection.
int l_db_fingerprint(lua_State* L) {
  check_db(L, 1);
  lua_settop(L, 2);
  lua_getfield(L, LUA_REGISTRYINDEX, "rb.globals");
  lua_getfield(L, -1, "require");
  lua_pushliteral(L, "fingerprint");
  lua_call(L, 1, 1);  // stack: self, opts, globals, module
  lua_getfield(L, -1, "take");
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_call(L, 2, 1);
  return 1;
}

/// db:tool_env(): the connection as libpq environment variables (PGHOST, PGPORT, PGDATABASE,
/// PGUSER, PGPASSWORD, PGSSLMODE ...) for pg_dump and friends: the password never goes in argv.
int l_db_tool_env(lua_State* L) {
  lua_db* h = check_db(L, 1);
  run::run_context& ctx = db_run(L, "db:tool_env");
  std::string dsn;
  if (h->owned) dsn = h->dsn;
  else if (ctx.target()) dsn = ctx.target()->target().dsn;
  else raise_usage(L, error_kind::usage, "this run has no database target");
  lua_newtable(L);
  for (const auto& [name, value] : db::libpq_env(dsn)) {
    lua_pushlstring(L, value.data(), value.size());
    lua_setfield(L, -2, name.c_str());
  }
  return 1;
}

/// psql(file_or_sql, { vars = {...}, single_transaction = true }): the script through the real
/// psql, a session of its own (bindings/db_psql.cpp), so not while a transaction is open here.
int l_db_psql(lua_State* L) {
  lua_db* h = check_db(L, 1);
  run::run_context& ctx = db_run(L, "ctx.db:psql");
  if (h->closed) raise_usage(L, error_kind::usage, "this connection was closed");
  if (h->owned) return db_psql(L, ctx, h->dsn, h->owned->is_open() && h->owned->in_transaction());
  if (!ctx.target()) raise_usage(L, error_kind::usage, "this run has no database target");
  bool in_tx = ctx.target()->connected() && ctx.target()->get().in_transaction();
  return db_psql(L, ctx, ctx.target()->target().dsn, in_tx);
}

int l_db_close(lua_State* L) {
  lua_db* h = check_db(L, 1);
  if (!h->owned) raise_usage(L, error_kind::usage, "ctx.db belongs to the run and closes with it");
  h->owned.reset();
  h->closed = true;
  return 0;
}

int l_db_gc(lua_State* L) {
  auto* h = static_cast<lua_db*>(lua_touserdata(L, 1));
  h->~lua_db();
  return 0;
}

int l_db_tostring(lua_State* L) {
  lua_db* h = check_db(L, 1);
  std::string s = h->owned ? "db connection (" + h->owned->name() + ")" : "ctx.db";
  lua_pushstring(L, s.c_str());
  return 1;
}

// ---- module ----------------------------------------------------------------------------

/// db.connect([target_or_dsn]): another connection, to the run's target or to another one.
int l_db_connect(lua_State* L) {
  run::run_context& ctx = db_run(L, "db.connect");
  std::unique_ptr<db::connection> conn;
  std::string dsn_used;
  if (lua_isnoneornil(L, 1)) {
    if (!ctx.target()) raise_usage(L, error_kind::usage, "this run has no database target");
    conn = ctx.target()->open_another("db.connect");
    dsn_used = ctx.target()->target().dsn;
  } else {
    std::string arg = luaL_checkstring(L, 1);
    std::optional<run::resolved_target> t;
    bool is_dsn = arg.find('=') != std::string::npos || arg.find("://") != std::string::npos;
    run::config empty;
    const run::config& cfg = ctx.cfg() ? *ctx.cfg() : empty;
    t = is_dsn ? run::resolve_target(cfg, std::nullopt, arg, std::nullopt)
               : run::resolve_target(cfg, arg, std::nullopt, std::nullopt);
    db::connection_options o;
    o.dsn = t->dsn;
    dsn_used = t->dsn;
    o.name = is_dsn ? "db.connect" : "target '" + t->name + "'";
    conn = std::make_unique<db::connection>(o);
    conn->set_statement_timeout(t->statement_timeout);
    conn->set_lock_timeout(t->lock_timeout);
    run::run_context* rc = &ctx;
    conn->on_statement([rc, L](const db::statement_record& r) {
      if (sandbox::from(L).current_run() == rc) rc->record_statement(r);
    });
  }
  auto* h = static_cast<lua_db*>(lua_newuserdata(L, sizeof(lua_db)));
  new (h) lua_db();
  h->dsn = dsn_used;
  h->owned = std::move(conn);
  luaL_getmetatable(L, k_db_meta);
  lua_setmetatable(L, -2);
  return 1;
}

/// db.array{...}: a PostgreSQL array literal for a Lua list, to bind as $1::text[] and the like
/// (a plain Lua table binds as JSON).
int l_db_array(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  std::string out = "{";
  std::size_t n = lua_objlen(L, 1);
  for (std::size_t i = 1; i <= n; ++i) {
    lua_rawgeti(L, 1, static_cast<int>(i));
    if (i > 1) out += ',';
    if (is_null(L, -1)) {
      out += "NULL";
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
      out += sql_number(lua_tonumber(L, -1));
    } else if (lua_type(L, -1) == LUA_TBOOLEAN) {
      out += lua_toboolean(L, -1) ? "true" : "false";
    } else if (lua_type(L, -1) == LUA_TSTRING) {
      out += '"';
      for (char c : to_string(L, -1)) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += '"';
    } else {
      raise_usage(L, error_kind::usage, "db.array: item " + std::to_string(i) + " is a " + luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
  out += '}';
  lua_pushlstring(L, out.data(), out.size());
  return 1;
}

/// db.pg_bin("pg_dump"): the PostgreSQL 15 client program's path ($RUNBOOK_PG_BIN or the
/// Debian location), so backups never pick another version's tool.
int l_db_pg_bin(lua_State* L) {
  std::string tool = luaL_checkstring(L, 1);
  lua_pushstring(L, db::pg_bin(tool).c_str());
  return 1;
}

}  // namespace

void push_ctx_db(lua_State* L) {
  auto* h = static_cast<lua_db*>(lua_newuserdata(L, sizeof(lua_db)));
  new (h) lua_db();
  luaL_getmetatable(L, k_db_meta);
  lua_setmetatable(L, -2);
}

void open_db(sandbox& sb) {
  lua_State* L = sb.state();
  open_null(L);

  luaL_newmetatable(L, k_db_meta);
  lua_newtable(L);  // methods
  const luaL_Reg methods[] = {
      {"query", trampoline<l_db_query>},       {"exec", trampoline<l_db_exec>},
      {"scalar", trampoline<l_db_scalar>},     {"explain", trampoline<l_db_explain>},
      {"script", trampoline<l_db_script>},     {"transaction", trampoline<l_db_transaction>},
      {"savepoint", trampoline<l_db_savepoint>}, {"lock", trampoline<l_db_lock>},
      {"notices", trampoline<l_db_notices>},   {"close", trampoline<l_db_close>},
      {"fingerprint", trampoline<l_db_fingerprint>}, {"tool_env", trampoline<l_db_tool_env>},
      {"psql", trampoline<l_db_psql>},         {nullptr, nullptr},
  };
  luaL_register(L, nullptr, methods);
  open_db_rows(L);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, finalizer<l_db_gc>);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, trampoline<l_db_tostring>);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);

  lua_newtable(L);  // the db module
  push_null(L);
  lua_setfield(L, -2, "null");
  lua_pushcfunction(L, trampoline<l_db_connect>);
  lua_setfield(L, -2, "connect");
  lua_pushcfunction(L, trampoline<l_db_array>);
  lua_setfield(L, -2, "array");
  open_db_sandbox(L);
  lua_pushcfunction(L, trampoline<l_db_pg_bin>);
  lua_setfield(L, -2, "pg_bin");
  sb.set_global("db");
}

}  // namespace rb::lua
