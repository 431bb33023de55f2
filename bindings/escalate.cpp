// Lua module: escalate{ level, policy, summary, severity, cause } — during a run, opens (or
// joins and raises) an incident at once and returns its id; while a runbook file is being
// loaded (a watch's `action = escalate{...}`), returns an action descriptor table instead.
#include "bindings/escalate.hpp"

#include "bindings/convert.hpp"
#include "bindings/error.hpp"
#include "bindings/sandbox.hpp"
#include "engine/run/notify.hpp"

namespace rb::lua {
namespace {

int l_escalate(lua_State* L) {
  if (!lua_isnoneornil(L, 1) && lua_type(L, 1) != LUA_TTABLE)
    raise_usage(L, error_kind::usage, "escalate takes a table: escalate{ level = 2, summary = \"...\" }");
  json spec = lua_isnoneornil(L, 1) ? json::object() : to_json(L, 1);
  if (spec.is_array() && spec.empty()) spec = json::object();
  if (spec.is_object() && spec.contains("action")) raise_usage(L, error_kind::usage, "escalate: unknown field 'action'");
  run::check_escalate_spec(spec);
  run::run_context* ctx = sandbox::from(L).current_run();
  if (!ctx) {
    // Declaring, not running (trigger { action = escalate{...} }): a descriptor for the watch.
    spec["action"] = "escalate";
    push_json(L, spec);
    return 1;
  }
  std::string id = run::escalate(*ctx, spec);
  lua_pushlstring(L, id.data(), id.size());
  return 1;
}

}  // namespace

void open_escalate(sandbox& sb) {
  lua_pushcfunction(sb.state(), trampoline<l_escalate>);
  sb.set_global("escalate");
}

}  // namespace rb::lua
