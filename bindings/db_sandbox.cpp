// Lua module: db, function sandbox — db.sandbox(), a throwaway PostgreSQL (backup.verify restores
// into one; a point-in-time recovery of a base backup): :dsn() and :close(), also closed when collected.
#include "bindings/db_module.hpp"
#include "bindings/error.hpp"
#include "engine/db/cluster.hpp"
#include "engine/run/context.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace rb::lua {
namespace {

constexpr const char* k_cluster_meta = "rb.db.sandbox";

/// A throwaway PostgreSQL made by db.sandbox().
struct lua_cluster {
  std::unique_ptr<db::cluster> cluster;
};

/// The string field `name` of the options table at `idx` (raw access: no metamethods run), or
/// nullopt when absent; raises when it is not a string.
std::optional<std::string> string_option(lua_State* L, int idx, const char* name) {
  lua_pushstring(L, name);
  lua_rawget(L, idx);
  std::optional<std::string> out;
  if (lua_type(L, -1) == LUA_TSTRING) {
    std::size_t len = 0;
    const char* s = lua_tolstring(L, -1, &len);
    out.emplace(s, len);
  } else if (!lua_isnil(L, -1)) {
    raise_usage(L, error_kind::usage, std::string("db.sandbox: ") + name + " must be a string");
  }
  lua_pop(L, 1);
  return out;
}

/// db.sandbox([opts]): starts a throwaway PostgreSQL; returns an object with :dsn() and :close()
/// (also closed when collected). For checking backups by restoring them. With opts
/// { base_backup = DIR, wal_archive = DIR, recovery_target_time = "...", database = "app",
/// timeout = seconds } it is a point-in-time recovery of that base backup instead: the WAL is
/// replayed up to the target time and the server promoted before it returns.
int l_db_sandbox(lua_State* L) {
  run::run_context& rc = db_run(L, "db.sandbox");
  db::cluster_options o;
  o.check_interrupt = [&rc] { rc.check_interrupt(); };  // Ctrl-C and the step's time limit stop a replay
  o.database = "sandbox";
  if (lua_type(L, 1) == LUA_TTABLE) {
    auto base = string_option(L, 1, "base_backup");
    auto archive = string_option(L, 1, "wal_archive");
    auto target = string_option(L, 1, "recovery_target_time");
    if (base || archive || target) {
      if (!base || !archive || !target)
        raise_usage(L, error_kind::usage,
                    "db.sandbox: a point-in-time recovery needs base_backup, wal_archive and recovery_target_time");
      o.recover = db::recovery_source{*base, *archive, *target};
      o.start_timeout = std::chrono::seconds(300);
    }
    if (auto name = string_option(L, 1, "database")) o.database = *name;
    lua_pushliteral(L, "timeout");
    lua_rawget(L, 1);
    if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) >= 1 && lua_tonumber(L, -1) <= 86400)
      o.start_timeout = std::chrono::seconds(static_cast<long>(lua_tonumber(L, -1)));
    else if (!lua_isnil(L, -1))
      raise_usage(L, error_kind::usage, "db.sandbox: timeout must be a number of seconds from 1 to 86400");
    lua_pop(L, 1);
  } else if (!lua_isnoneornil(L, 1)) {
    raise_usage(L, error_kind::usage, "db.sandbox: the argument must be a table of options");
  }
  auto c = std::make_unique<db::cluster>(o);
  auto* u = static_cast<lua_cluster*>(lua_newuserdata(L, sizeof(lua_cluster)));
  new (u) lua_cluster();
  u->cluster = std::move(c);
  luaL_getmetatable(L, k_cluster_meta);
  lua_setmetatable(L, -2);
  return 1;
}

int l_db_sandbox_dsn(lua_State* L) {
  auto* u = static_cast<lua_cluster*>(luaL_checkudata(L, 1, k_cluster_meta));
  if (!u->cluster) raise_usage(L, error_kind::usage, "this sandbox was closed");
  lua_pushstring(L, u->cluster->dsn().c_str());
  return 1;
}

int l_db_sandbox_close(lua_State* L) {
  auto* u = static_cast<lua_cluster*>(luaL_checkudata(L, 1, k_cluster_meta));
  u->cluster.reset();
  return 0;
}

int l_db_sandbox_gc(lua_State* L) {
  auto* u = static_cast<lua_cluster*>(lua_touserdata(L, 1));
  u->~lua_cluster();
  return 0;
}

}  // namespace

void open_db_sandbox(lua_State* L) {
  // stack: module
  luaL_newmetatable(L, k_cluster_meta);
  lua_newtable(L);
  lua_pushcfunction(L, trampoline<l_db_sandbox_dsn>);
  lua_setfield(L, -2, "dsn");
  lua_pushcfunction(L, trampoline<l_db_sandbox_close>);
  lua_setfield(L, -2, "close");
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, finalizer<l_db_sandbox_gc>);
  lua_setfield(L, -2, "__gc");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);

  lua_pushcfunction(L, trampoline<l_db_sandbox>);
  lua_setfield(L, -2, "sandbox");
}

}  // namespace rb::lua
