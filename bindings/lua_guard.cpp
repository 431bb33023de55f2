// A guard's code as a Lua function.
#include "bindings/lua_guard.hpp"

#include "bindings/ctx.hpp"
#include "bindings/db.hpp"

namespace rb::lua {

lua_guard::lua_guard(sandbox& sb, int fn_idx) : m_sb(sb) {
  lua_State* L = sb.state();
  lua_pushvalue(L, fn_idx);
  m_fn = luaL_ref(L, LUA_REGISTRYINDEX);
}

lua_guard::~lua_guard() { luaL_unref(m_sb.state(), LUA_REGISTRYINDEX, m_fn); }

run::call_result lua_guard::check(const run::step_call& call) {
  lua_State* L = m_sb.state();
  run::call_result out;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m_fn);
  push_ctx(L, call);
  m_sb.set_current_run(call.ctx);
  // stack: ok, reason
  out.error = m_sb.call(1, 2, call.deadline, call.step.name + (call.phase.name.empty() ? "" : " of phase '" + call.phase.name + "'"));
  close_open_cursors(L);
  m_sb.set_current_run(nullptr);
  if (out.error) {
    if (out.error->source.empty()) out.error->source = call.step.where.file;
    lua_settop(L, top);
    return out;
  }
  int ok_type = lua_type(L, -2);
  if (ok_type != LUA_TBOOLEAN) {
    run::step_error e;
    e.kind = error_kind::step_failed;
    e.klass = "guard";
    e.message = call.step.name + " returned " + (ok_type == LUA_TNIL ? std::string("nothing") : std::string("a ") + lua_typename(L, ok_type)) +
                "; a guard returns true, or false and a reason";
    e.source = call.step.where.file;
    e.line = call.step.where.line;
    out.error = e;
    lua_settop(L, top);
    return out;
  }
  out.value = run::json{{"ok", lua_toboolean(L, -2) != 0}, {"reason", nullptr}};
  if (lua_type(L, -1) == LUA_TSTRING) out.value["reason"] = std::string(lua_tostring(L, -1));
  else if (lua_type(L, -1) == LUA_TNUMBER) out.value["reason"] = std::string(lua_tostring(L, -1));
  lua_settop(L, top);
  return out;
}

}  // namespace rb::lua
