// Lua module: checklists (see checklist.hpp).
#include "bindings/checklist.hpp"

#include <set>
#include <string>

#include "bindings/error.hpp"
#include "bindings/lua_step.hpp"
#include "bindings/sandbox.hpp"
#include "bindings/spec_reader.hpp"
#include "engine/util/text.hpp"

namespace rb::lua {
namespace {

/// A check item's run function: calls the item's check (upvalue 1) with ctx; false or nil
/// fails the item with its second result as the message; otherwise returns that detail.
int l_checklist_check(lua_State* L) {
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, 2);
  if (lua_toboolean(L, -2)) return 1;  // the detail (nil when none)
  std::string detail = lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER
                           ? std::string(lua_tostring(L, -1))
                           : std::string("the check returned ") + (lua_isnil(L, -2) ? "nil" : "false");
  raise(L, make_step_error(error_kind::check_failed, detail, "check"));
}

}  // namespace

run::phase_def read_checklist(sandbox& sb, const declaration& d) {
  lua_State* L = sb.state();
  run::phase_def p;
  p.name = d.name;
  p.where = {d.source, d.line};
  p.checklist = true;
  spec_reader r(L, -1, p.where, "checklist '" + d.name + "'", {"description", "on_error"});
  p.description = r.string("description").value_or("");
  p.on_err = r.on_error("on_error");
  std::set<std::string> names;
  const std::string form = "{ \"what is true\", check = function(ctx) return ok, detail end } or "
                           "{ \"what a person confirms\", manual = \"how to tell\" }";
  for (std::size_t i = 1; i <= r.items(); ++i) {
    lua_rawgeti(L, r.index(), static_cast<int>(i));
    std::string owner = r.owner() + ": item " + std::to_string(i);
    if (lua_type(L, -1) != LUA_TTABLE) fail(p.where, owner + " must be " + form);
    spec_reader item(L, -1, p.where, owner, {"check", "manual"});
    lua_rawgeti(L, item.index(), 1);
    if (item.items() != 1 || lua_type(L, -1) != LUA_TSTRING || trim(lua_tostring(L, -1)).empty())
      fail(p.where, owner + " must start with what it checks: " + form);
    run::step_def s;
    s.name = lua_tostring(L, -1);
    lua_pop(L, 1);
    s.where = p.where;
    if (!names.insert(s.name).second) fail(p.where, r.owner() + " lists '" + s.name + "' twice");
    s.manual = item.string("manual");
    bool has_check = item.get("check") == LUA_TFUNCTION;
    if (!has_check && !lua_isnil(L, -1)) item.type_error("check", "a function(ctx) returning ok, detail");
    if (has_check == s.manual.has_value())
      fail(p.where, owner + " ('" + s.name + "') needs exactly one of check = function or manual = \"text\"");
    if (has_check) {
      lua_createtable(L, 0, 1);  // the step spec: { run = wrapper(check) }
      lua_pushvalue(L, -2);
      lua_pushcclosure(L, trampoline<l_checklist_check>, 1);
      lua_setfield(L, -2, "run");
      s.body = std::make_shared<lua_step>(sb, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 2);  // check, item
    p.steps.push_back(std::move(s));
  }
  if (p.steps.empty()) fail(p.where, r.owner() + " has no items");
  return p;
}

}  // namespace rb::lua
