// Lua module: db — the database as runbooks use it. Parameters are always bound ($1, $2 ...),
// never spliced into SQL. Values come back typed: integers and floats as numbers, numeric as
// a number when exact (else a string), bool, json/jsonb as tables, timestamps as ISO 8601
// strings, arrays as sequences, and NULL as db.null.
#include "bindings/db.hpp"

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "bindings/convert.hpp"
#include "bindings/db_psql.hpp"
#include "bindings/error.hpp"
#include "bindings/sandbox.hpp"
#include <libpq-fe.h>

#include "engine/db/advisory_lock.hpp"
#include "engine/db/cluster.hpp"
#include "engine/db/psql.hpp"
#include "engine/util/json_text.hpp"
#include "engine/util/secrets.hpp"
#include "engine/run/context.hpp"

namespace rb::lua {
namespace {

constexpr const char* k_db_meta = "rb.db";
constexpr const char* k_null_key = "rb.db.null";
constexpr const char* k_rows_meta = "rb.db.rows";
constexpr const char* k_open_cursors = "rb.db.cursors";

/// A connection as Lua holds it: the run's target (owned == null) or one of db.connect().
struct lua_db {
  std::unique_ptr<db::connection> owned;
  std::string dsn;  ///< of an owned connection (for tool_env)
  bool closed = false;
};

/// A throwaway PostgreSQL made by db.sandbox() (backup.verify restores into one).
struct lua_cluster {
  std::unique_ptr<db::cluster> cluster;
};
constexpr const char* k_cluster_meta = "rb.db.sandbox";

/// A rows() iterator: a server-side cursor fetched in batches.
struct lua_rows {
  lua_db* handle = nullptr;   // the connection object (kept alive by a registry ref)
  int handle_ref = LUA_NOREF;
  std::string cursor;
  bool own_transaction = false;
  bool done = false;
  db::result batch;
  std::size_t next = 0;
};

run::run_context& current(lua_State* L, const char* what) {
  run::run_context* ctx = sandbox::from(L).current_run();
  if (!ctx) raise_usage(L, error_kind::usage, std::string(what) + " can only be used while a step runs");
  return *ctx;
}

lua_db* check_db(lua_State* L, int idx) { return static_cast<lua_db*>(luaL_checkudata(L, idx, k_db_meta)); }

db::connection& conn_of(lua_State* L, lua_db* h) {
  run::run_context& ctx = current(L, "the database");
  if (h->closed) raise_usage(L, error_kind::usage, "this connection was closed");
  if (h->owned) {
    if (!h->owned->is_open()) h->owned->reconnect();
    ctx.apply_limits(*h->owned);
    return *h->owned;
  }
  return ctx.database();
}

void push_null(lua_State* L) { lua_getfield(L, LUA_REGISTRYINDEX, k_null_key); }

bool is_null(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA) return false;
  push_null(L);
  bool eq = lua_rawequal(L, idx, -1);
  lua_pop(L, 1);
  return eq;
}

std::string number_text(double d) {
  char buf[64];
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", d);
  else std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

/// Lua values from `first` to the top as bound parameters.
std::vector<db::param> params_from(lua_State* L, int first) {
  std::vector<db::param> out;
  int top = lua_gettop(L);
  for (int i = first; i <= top; ++i) {
    switch (lua_type(L, i)) {
      case LUA_TNIL: out.emplace_back(std::nullopt); break;
      case LUA_TBOOLEAN: out.emplace_back(lua_toboolean(L, i) ? "true" : "false"); break;
      case LUA_TNUMBER: out.emplace_back(number_text(lua_tonumber(L, i))); break;
      case LUA_TSTRING: out.emplace_back(to_string(L, i)); break;
      case LUA_TTABLE: out.emplace_back(json_text(to_json(L, i))); break;
      default:
        if (is_null(L, i)) {
          out.emplace_back(std::nullopt);
          break;
        }
        raise_usage(L, error_kind::usage, "parameter $" + std::to_string(i - first + 1) + " is a " +
                                              luaL_typename(L, i) + ", which cannot be sent to the database");
    }
  }
  return out;
}

std::string sql_arg(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TSTRING) raise_usage(L, error_kind::usage, "SQL text expected as a string");
  return to_string(L, idx);
}

// ---- values ----------------------------------------------------------------------------

void push_scalar_text(lua_State* L, unsigned oid, const std::string& t);

/// Parses a PostgreSQL array literal ({1,2,"a b",NULL}, nested for more dimensions).
void push_array(lua_State* L, unsigned elem_oid, const std::string& text, std::size_t& i) {
  lua_newtable(L);
  int n = 0;
  if (i < text.size() && text[i] == '{') ++i;
  while (i < text.size() && text[i] != '}') {
    if (text[i] == ',') {
      ++i;
      continue;
    }
    if (text[i] == '{') {
      push_array(L, elem_oid, text, i);
    } else {
      std::string item;
      bool quoted = false;
      if (text[i] == '"') {
        quoted = true;
        ++i;
        while (i < text.size() && text[i] != '"') {
          if (text[i] == '\\' && i + 1 < text.size()) ++i;
          item += text[i++];
        }
        ++i;
      } else {
        while (i < text.size() && text[i] != ',' && text[i] != '}') item += text[i++];
      }
      if (!quoted && item == "NULL") push_null(L);
      else push_scalar_text(L, elem_oid, item);
    }
    lua_rawseti(L, -2, ++n);
  }
  if (i < text.size()) ++i;  // '}'
}

unsigned array_element(unsigned oid) {
  switch (oid) {
    case 1000: return 16;    // bool[]
    case 1005: return 21;    // int2[]
    case 1007: return 23;    // int4[]
    case 1016: return 20;    // int8[]
    case 1021: return 700;   // float4[]
    case 1022: return 701;   // float8[]
    case 1231: return 1700;  // numeric[]
    case 1009: case 1015: case 1014: case 2951: return 25;  // text, varchar, bpchar, uuid
    case 199: case 3807: return 3802;                        // json[], jsonb[]
    case 1115: case 1185: return 1184;                       // timestamp[], timestamptz[]
    default: return 0;
  }
}

std::string iso_time(std::string t) {
  // "2026-11-22 02:26:48.123+00" -> "2026-11-22T02:26:48.123+00:00"
  if (t.size() > 10 && t[10] == ' ') t[10] = 'T';
  std::size_t sign = t.find_last_of("+-");
  if (sign != std::string::npos && sign > 10 && t.size() - sign == 3) t += ":00";
  return t;
}

void push_scalar_text(lua_State* L, unsigned oid, const std::string& t) {
  switch (oid) {
    case 16: lua_pushboolean(L, t == "t" || t == "true"); return;
    case 20: case 21: case 23: case 26: {
      double d = std::strtod(t.c_str(), nullptr);
      if (std::fabs(d) < 9.007199254740992e15) lua_pushnumber(L, d);
      else lua_pushlstring(L, t.data(), t.size());  // beyond 2^53: exact as text
      return;
    }
    case 700: case 701:
      if (t == "NaN") lua_pushnumber(L, NAN);
      else if (t == "Infinity") lua_pushnumber(L, HUGE_VAL);
      else if (t == "-Infinity") lua_pushnumber(L, -HUGE_VAL);
      else lua_pushnumber(L, std::strtod(t.c_str(), nullptr));
      return;
    case 1700: {
      std::size_t digits = 0;
      for (char c : t) digits += std::isdigit(static_cast<unsigned char>(c)) != 0;
      double d = std::strtod(t.c_str(), nullptr);
      // Exact when a double round-trips it; otherwise the exact text.
      if (digits <= 15 && t != "NaN") lua_pushnumber(L, d);
      else lua_pushlstring(L, t.data(), t.size());
      return;
    }
    case 114: case 3802: {
      json j = json::parse(t, nullptr, false);
      if (j.is_discarded()) lua_pushlstring(L, t.data(), t.size());
      else push_json(L, j);
      return;
    }
    case 1114: case 1184: {
      std::string iso = iso_time(t);
      lua_pushlstring(L, iso.data(), iso.size());
      return;
    }
    default:
      if (unsigned elem = array_element(oid)) {
        std::size_t i = 0;
        push_array(L, elem, t, i);
        return;
      }
      lua_pushlstring(L, t.data(), t.size());
  }
}

void push_field(lua_State* L, const db::column& c, const db::field& f) {
  if (f.null) push_null(L);
  else push_scalar_text(L, c.oid, f.text);
}

void push_row(lua_State* L, const std::vector<db::column>& cols, const std::vector<db::field>& row) {
  lua_createtable(L, 0, static_cast<int>(cols.size()));
  for (std::size_t i = 0; i < cols.size() && i < row.size(); ++i) {
    push_field(L, cols[i], row[i]);
    lua_setfield(L, -2, cols[i].name.c_str());
  }
}

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
  run::run_context& ctx = current(L, "db:script");
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
    std::filesystem::path file = ctx.book().file.parent_path() / arg;
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
  run::run_context& ctx = current(L, "db:tool_env");
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
  run::run_context& ctx = current(L, "ctx.db:psql");
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

// ---- rows ------------------------------------------------------------------------------

int g_cursor_seq = 0;

void close_rows(lua_State* L, lua_rows* it) {
  if (it->done) return;
  it->done = true;
  it->batch = {};
  if (!it->handle || it->handle->closed) return;
  try {
    db::connection& c = conn_of(L, it->handle);
    c.exec("CLOSE \"" + it->cursor + "\"");
    if (it->own_transaction) c.commit();
  } catch (const std::exception&) {
    // a lost session took its cursor and transaction with it
  }
}

void forget_cursor(lua_State* L, lua_rows* it) {
  lua_getfield(L, LUA_REGISTRYINDEX, k_open_cursors);
  lua_pushlightuserdata(L, it);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, it->handle_ref);
  it->handle_ref = LUA_NOREF;
}

int l_rows_next(lua_State* L) {
  auto* it = static_cast<lua_rows*>(luaL_checkudata(L, 1, k_rows_meta));
  if (it->done) return 0;
  if (it->next >= it->batch.rows.size()) {
    db::connection& c = conn_of(L, it->handle);
    it->batch = c.exec("FETCH 1000 FROM \"" + it->cursor + "\"");
    it->next = 0;
    if (it->batch.rows.empty()) {
      close_rows(L, it);
      forget_cursor(L, it);
      return 0;
    }
  }
  push_row(L, it->batch.columns, it->batch.rows[it->next++]);
  return 1;
}

int l_rows_gc(lua_State* L) {
  auto* it = static_cast<lua_rows*>(lua_touserdata(L, 1));
  it->~lua_rows();
  return 0;
}

/// rows(sql, ...): for row in db:rows(sql, ...) do ... end — rows fetched 1000 at a time from
/// a server-side cursor, so memory stays bounded however many rows there are.
int l_db_rows(lua_State* L) {
  lua_db* h = check_db(L, 1);
  std::string sql = sql_arg(L, 2);
  auto params = params_from(L, 3);
  db::connection& c = conn_of(L, h);
  auto* it = static_cast<lua_rows*>(lua_newuserdata(L, sizeof(lua_rows)));
  new (it) lua_rows();
  luaL_getmetatable(L, k_rows_meta);
  lua_setmetatable(L, -2);
  it->handle = h;
  lua_pushvalue(L, 1);
  it->handle_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  it->cursor = "rb_rows_" + std::to_string(++g_cursor_seq);
  if (!c.in_transaction()) {
    c.begin();
    it->own_transaction = true;
  }
  c.exec("DECLARE \"" + it->cursor + "\" NO SCROLL CURSOR FOR " + sql, params);
  // Remember it, so a loop left with break does not leave the cursor open past the step.
  lua_getfield(L, LUA_REGISTRYINDEX, k_open_cursors);
  lua_pushlightuserdata(L, it);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  // for-in protocol: iterator function, state (the userdata), nil
  lua_pushcfunction(L, trampoline<l_rows_next>);
  lua_insert(L, -2);
  return 2;
}

// ---- module ----------------------------------------------------------------------------

/// db.connect([target_or_dsn]): another connection, to the run's target or to another one.
int l_db_connect(lua_State* L) {
  run::run_context& ctx = current(L, "db.connect");
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
      out += number_text(lua_tonumber(L, -1));
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

/// db.sandbox(): starts a throwaway PostgreSQL; returns an object with :dsn() and :close()
/// (also closed when collected). For checking backups by restoring them.
int l_db_sandbox(lua_State* L) {
  current(L, "db.sandbox");
  db::cluster_options o;
  o.database = "sandbox";
  auto c = std::make_unique<db::cluster>(o);
  auto* u = static_cast<lua_cluster*>(lua_newuserdata(L, sizeof(lua_cluster)));
  new (u) lua_cluster();
  u->cluster = std::move(c);
  luaL_getmetatable(L, k_cluster_meta);
  lua_setmetatable(L, -2);
  return 1;
}

int l_sandbox_dsn(lua_State* L) {
  auto* u = static_cast<lua_cluster*>(luaL_checkudata(L, 1, k_cluster_meta));
  if (!u->cluster) raise_usage(L, error_kind::usage, "this sandbox was closed");
  lua_pushstring(L, u->cluster->dsn().c_str());
  return 1;
}

int l_sandbox_close(lua_State* L) {
  auto* u = static_cast<lua_cluster*>(luaL_checkudata(L, 1, k_cluster_meta));
  u->cluster.reset();
  return 0;
}

int l_sandbox_gc(lua_State* L) {
  auto* u = static_cast<lua_cluster*>(lua_touserdata(L, 1));
  u->~lua_cluster();
  return 0;
}

/// db.pg_bin("pg_dump"): the PostgreSQL 15 client program's path ($RUNBOOK_PG_BIN or the
/// Debian location), so backups never pick another version's tool.
int l_db_pg_bin(lua_State* L) {
  std::string tool = luaL_checkstring(L, 1);
  lua_pushstring(L, db::pg_bin(tool).c_str());
  return 1;
}

int l_null_tostring(lua_State* L) {
  lua_pushliteral(L, "NULL");
  return 1;
}

}  // namespace

void push_ctx_db(lua_State* L) {
  auto* h = static_cast<lua_db*>(lua_newuserdata(L, sizeof(lua_db)));
  new (h) lua_db();
  luaL_getmetatable(L, k_db_meta);
  lua_setmetatable(L, -2);
}

void close_open_cursors(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, k_open_cursors);
  std::vector<lua_rows*> open;
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    open.push_back(static_cast<lua_rows*>(lua_touserdata(L, -2)));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  for (lua_rows* it : open) {
    close_rows(L, it);
    forget_cursor(L, it);
  }
}

void open_db(sandbox& sb) {
  lua_State* L = sb.state();
  // db.null: one sentinel for SQL NULL (nil cannot live in a row table).
  lua_newuserdata(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, trampoline<l_null_tostring>);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, k_null_key);

  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, k_open_cursors);

  luaL_newmetatable(L, k_db_meta);
  lua_newtable(L);  // methods
  const luaL_Reg methods[] = {
      {"query", trampoline<l_db_query>},       {"rows", trampoline<l_db_rows>},
      {"exec", trampoline<l_db_exec>},         {"scalar", trampoline<l_db_scalar>},
      {"explain", trampoline<l_db_explain>},   {"script", trampoline<l_db_script>},
      {"transaction", trampoline<l_db_transaction>}, {"savepoint", trampoline<l_db_savepoint>},
      {"lock", trampoline<l_db_lock>},         {"notices", trampoline<l_db_notices>},
      {"close", trampoline<l_db_close>},       {"fingerprint", trampoline<l_db_fingerprint>},
      {"tool_env", trampoline<l_db_tool_env>}, {"psql", trampoline<l_db_psql>},
      {nullptr, nullptr},
  };
  luaL_register(L, nullptr, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, finalizer<l_db_gc>);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, trampoline<l_db_tostring>);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);

  luaL_newmetatable(L, k_cluster_meta);
  lua_newtable(L);
  lua_pushcfunction(L, trampoline<l_sandbox_dsn>);
  lua_setfield(L, -2, "dsn");
  lua_pushcfunction(L, trampoline<l_sandbox_close>);
  lua_setfield(L, -2, "close");
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, finalizer<l_sandbox_gc>);
  lua_setfield(L, -2, "__gc");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);

  luaL_newmetatable(L, k_rows_meta);
  lua_pushcfunction(L, finalizer<l_rows_gc>);
  lua_setfield(L, -2, "__gc");
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
  lua_pushcfunction(L, trampoline<l_db_sandbox>);
  lua_setfield(L, -2, "sandbox");
  lua_pushcfunction(L, trampoline<l_db_pg_bin>);
  lua_setfield(L, -2, "pg_bin");
  sb.set_global("db");
}

}  // namespace rb::lua
