// A step's code as Lua functions.
#include "bindings/lua_step.hpp"

#include "bindings/convert.hpp"
#include "bindings/ctx.hpp"
#include "bindings/db.hpp"
#include "engine/run/context.hpp"

namespace rb::lua {
namespace {

int take_ref(lua_State* L, int spec, const char* field) {
  lua_pushstring(L, field);
  lua_rawget(L, spec);  // raw: the spec is the runbook's table, its metatable never runs here
  if (lua_type(L, -1) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    return LUA_NOREF;
  }
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

}  // namespace

lua_step::lua_step(sandbox& sb, int spec_idx) : m_sb(sb) {
  lua_State* L = sb.state();
  spec_idx = spec_idx < 0 ? lua_gettop(L) + spec_idx + 1 : spec_idx;
  m_run = take_ref(L, spec_idx, "run");
  m_verify = take_ref(L, spec_idx, "verify");
  m_rollback = take_ref(L, spec_idx, "rollback");
  m_when = take_ref(L, spec_idx, "when");
}

lua_step::~lua_step() {
  lua_State* L = m_sb.state();
  for (int ref : {m_run, m_verify, m_rollback, m_when, m_result}) luaL_unref(L, LUA_REGISTRYINDEX, ref);
}

run::call_result lua_step::invoke(int ref, const run::step_call& call, bool pass_result, bool keep_result,
                                  const char* part) {
  lua_State* L = m_sb.state();
  run::call_result out;
  if (ref == LUA_NOREF) return out;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  push_ctx(L, call);
  int nargs = 1;
  if (pass_result) {
    if (m_result != LUA_NOREF) lua_rawgeti(L, LUA_REGISTRYINDEX, m_result);
    else lua_pushnil(L);
    ++nargs;
  }
  std::string what = std::string(part) + " of step '" + call.step.name + "'";
  if (call.ctx) call.ctx->set_position(&call.phase, &call.step);
  m_sb.set_current_run(call.ctx);
  out.error = m_sb.call(nargs, 1, call.deadline, what);
  close_open_cursors(L);
  m_sb.set_current_run(nullptr);
  if (!out.error) {
    out.value = to_json(L, -1, 4);
    if (keep_result) {
      luaL_unref(L, LUA_REGISTRYINDEX, m_result);
      lua_pushvalue(L, -1);
      m_result = luaL_ref(L, LUA_REGISTRYINDEX);
    }
  } else if (out.error->source.empty()) {
    out.error->source = call.step.where.file;
  } else if (out.error->source.rfind("...", 0) == 0) {
    // Lua shortened a long path; the step's own file is the one it means.
    const std::string& file = call.step.where.file;
    std::string tail = out.error->source.substr(3);
    if (file.size() >= tail.size() && file.compare(file.size() - tail.size(), tail.size(), tail) == 0)
      out.error->source = file;
  }
  lua_settop(L, top);
  return out;
}

run::call_result lua_step::run(const run::step_call& call) { return invoke(m_run, call, false, true, "run"); }
run::call_result lua_step::verify(const run::step_call& call) { return invoke(m_verify, call, true, false, "verify"); }
run::call_result lua_step::rollback(const run::step_call& call) {
  return invoke(m_rollback, call, false, false, "rollback");
}
run::call_result lua_step::when(const run::step_call& call) {
  run::call_result r = invoke(m_when, call, false, false, "when");
  if (m_when == LUA_NOREF) r.value = true;
  return r;
}

}  // namespace rb::lua
