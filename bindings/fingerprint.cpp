// The rehearsal's fingerprinter over stdlib's fingerprint module: take, diff, digest.
#include "bindings/fingerprint.hpp"

#include "bindings/convert.hpp"
#include "bindings/db.hpp"

namespace rb::lua {
namespace {

[[noreturn]] void fail(const run::step_error& e) { throw error(e.kind, "fingerprint: " + e.describe()); }

}  // namespace

fingerprint_probe::~fingerprint_probe() {
  for (int ref : m_refs) luaL_unref(m_sb.state(), LUA_REGISTRYINDEX, ref);
}

void fingerprint_probe::push_module(run::run_context& ctx) {
  lua_State* L = m_sb.state();
  lua_getfield(L, LUA_REGISTRYINDEX, "rb.globals");
  lua_getfield(L, -1, "require");
  lua_remove(L, -2);
  lua_pushliteral(L, "fingerprint");
  m_sb.set_current_run(&ctx);
  auto err = m_sb.call(1, 1);
  m_sb.set_current_run(nullptr);
  if (err) fail(*err);
}

int fingerprint_probe::take(run::run_context& ctx, const run::fingerprint_options& opts) {
  lua_State* L = m_sb.state();
  int top = lua_gettop(L);
  push_module(ctx);
  lua_getfield(L, -1, "take");
  push_ctx_db(L);
  lua_createtable(L, 0, 2);  // stack: module, take, db, opts
  if (!opts.schemas.empty()) {
    lua_createtable(L, static_cast<int>(opts.schemas.size()), 0);
    for (std::size_t i = 0; i < opts.schemas.size(); ++i) {
      lua_pushlstring(L, opts.schemas[i].data(), opts.schemas[i].size());
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
    lua_setfield(L, -2, "schemas");
  }
  lua_pushboolean(L, opts.data);
  lua_setfield(L, -2, "data");
  m_sb.set_current_run(&ctx);
  auto err = m_sb.call(2, 1);
  m_sb.set_current_run(nullptr);
  if (err) {
    lua_settop(L, top);
    fail(*err);
  }
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  m_refs.push_back(ref);
  lua_settop(L, top);
  return ref;
}

std::vector<std::string> fingerprint_probe::diff(run::run_context& ctx, int a, int b) {
  lua_State* L = m_sb.state();
  int top = lua_gettop(L);
  push_module(ctx);
  lua_getfield(L, -1, "diff");
  lua_rawgeti(L, LUA_REGISTRYINDEX, a);
  lua_rawgeti(L, LUA_REGISTRYINDEX, b);
  auto err = m_sb.call(2, 1);
  if (err) {
    lua_settop(L, top);
    fail(*err);
  }
  std::vector<std::string> out;
  std::size_t n = lua_objlen(L, -1);
  for (std::size_t i = 1; i <= n; ++i) {
    lua_rawgeti(L, -1, static_cast<int>(i));
    out.push_back(to_string(L, -1));
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  return out;
}

std::string fingerprint_probe::digest(int fp) {
  lua_State* L = m_sb.state();
  lua_rawgeti(L, LUA_REGISTRYINDEX, fp);
  lua_getfield(L, -1, "digest");
  std::string d = to_string(L, -1);
  lua_pop(L, 2);
  return d;
}

}  // namespace rb::lua
