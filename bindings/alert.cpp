// Lua module: alert — alert.send{ severity, summary, details, channel, dedup } queues a
// notification on the run's channels and returns the delivery ids; alert{ ... } (the same
// fields) declares a watch action sent when its trigger acts.
#include "bindings/alert.hpp"

#include "bindings/convert.hpp"
#include "bindings/error.hpp"
#include "bindings/sandbox.hpp"
#include "engine/run/notify.hpp"
#include "engine/run/context.hpp"
#include "engine/util/text.hpp"

namespace rb::lua {
namespace {

/// alert.send{ severity = "critical", summary = "...", details = {...}, channel = "team" | {...}, dedup = "key" }
int l_alert_send(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  run::run_context* ctx = sandbox::from(L).current_run();
  if (!ctx) throw error(error_kind::usage, "alert.send can only be called while a step runs");
  json spec = to_json(L, 1);
  if (spec.is_array() && spec.empty()) spec = json::object();
  if (spec.contains("action")) throw error(error_kind::usage, "alert.send: unknown field 'action'");
  std::vector<std::string> ids = run::send_alert(*ctx, spec, "alert.send");
  lua_createtable(L, static_cast<int>(ids.size()), 0);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    lua_pushlstring(L, ids[i].data(), ids[i].size());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  return 1;
}

/// alert{ ... }: a watch action (declared with the runbook, sent when its trigger acts), checked now.
int l_alert_action(lua_State* L) {
  // 1: the alert table itself (__call), 2: the fields
  if (lua_type(L, 2) != LUA_TTABLE)
    raise_usage(L, error_kind::usage, "alert takes a table: alert{ severity = \"critical\", summary = \"...\" }");
  json spec = to_json(L, 2);
  if (spec.is_array() && spec.empty()) spec = json::object();
  run::check_alert_spec(spec, "alert");
  spec["action"] = "alert";
  push_json(L, spec);
  return 1;
}

}  // namespace

void open_alert(sandbox& sb) {
  lua_State* L = sb.state();
  lua_newtable(L);
  lua_pushcfunction(L, trampoline<l_alert_send>);
  lua_setfield(L, -2, "send");
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, trampoline<l_alert_action>);
  lua_setfield(L, -2, "__call");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  sb.set_global("alert");
}

}  // namespace rb::lua
