// Lua module: db, function sandbox — db.sandbox(), a throwaway PostgreSQL (backup.verify restores
// into one): :dsn() and :close(), also closed when collected.
#include "bindings/db_module.hpp"
#include "bindings/error.hpp"
#include "engine/db/cluster.hpp"

namespace rb::lua {
namespace {

constexpr const char* k_cluster_meta = "rb.db.sandbox";

/// A throwaway PostgreSQL made by db.sandbox().
struct lua_cluster {
  std::unique_ptr<db::cluster> cluster;
};

/// db.sandbox(): starts a throwaway PostgreSQL; returns an object with :dsn() and :close()
/// (also closed when collected). For checking backups by restoring them.
int l_db_sandbox(lua_State* L) {
  db_run(L, "db.sandbox");
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
