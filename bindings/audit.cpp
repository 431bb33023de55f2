// Lua module: audit — audit.note(message, fields) writes a `note` record of the current run.
#include "bindings/audit.hpp"

#include "bindings/convert.hpp"
#include "bindings/error.hpp"
#include "bindings/sandbox.hpp"
#include "engine/run/context.hpp"

namespace rb::lua {
namespace {

int l_audit_note(lua_State* L) {
  std::string message = luaL_checkstring(L, 1);
  json fields = lua_isnoneornil(L, 2) ? json() : to_json(L, 2);
  sandbox& sb = sandbox::from(L);
  if (!sb.current_run()) raise_usage(L, error_kind::usage, "audit.note can only be called while a step runs");
  sb.current_run()->note(message, std::move(fields));
  return 0;
}

}  // namespace

void open_audit(sandbox& sb) {
  lua_State* L = sb.state();
  lua_newtable(L);
  lua_pushcfunction(L, trampoline<l_audit_note>);
  lua_setfield(L, -2, "note");
  sb.set_global("audit");
}

}  // namespace rb::lua
