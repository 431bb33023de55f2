// Lua module: the runbook language constructors (runbook, phase, step, watch, trigger, checklist)
// and check().
#include "bindings/dsl.hpp"

#include <string>

#include "bindings/error.hpp"
#include "bindings/sandbox.hpp"

namespace rb::lua {
namespace {

constexpr const char* k_declarations = "rb.declarations";
// What each declaration table stands for lives here, keyed (weakly) by the table: runbook code
// holds the table but cannot reach this registry entry, so a declaration cannot be forged
// ({ [tag] = "step" }) nor its name or position changed after the fact.
constexpr const char* k_known = "rb.declarations.known";

void caller_position(lua_State* L, int level, std::string& source, int& line) {
  lua_Debug ar;
  if (lua_getstack(L, level, &ar) && lua_getinfo(L, "Sl", &ar)) {
    source = ar.source && ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
    line = ar.currentline;
  }
}

/// The function `runbook "name"` returns: takes the spec table, returns a declaration.
int l_dsl_declare(lua_State* L) {
  // upvalues: kind, name, source, line
  if (lua_type(L, 1) != LUA_TTABLE) {
    std::string kind = lua_tostring(L, lua_upvalueindex(1));
    std::string name = lua_tostring(L, lua_upvalueindex(2));
    raise_usage(L, error_kind::bad_runbook,
                kind + " '" + name + "' must be followed by a table: " + kind + " \"" + name + "\" { ... }");
  }
  lua_newtable(L);  // the declaration runbook code sees: an empty table
  // stack: spec, declaration
  lua_getfield(L, LUA_REGISTRYINDEX, k_known);
  lua_pushvalue(L, -2);
  lua_createtable(L, 0, 5);  // the record: kind, name, source, line, spec
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setfield(L, -2, "kind");
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setfield(L, -2, "name");
  lua_pushvalue(L, lua_upvalueindex(3));
  lua_setfield(L, -2, "source");
  lua_pushvalue(L, lua_upvalueindex(4));
  lua_setfield(L, -2, "line");
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "spec");
  lua_rawset(L, -3);
  lua_pop(L, 1);
  std::string kind = lua_tostring(L, lua_upvalueindex(1));
  if (kind == "runbook") {
    lua_getfield(L, LUA_REGISTRYINDEX, k_declarations);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, static_cast<int>(lua_objlen(L, -2)) + 1);
    lua_pop(L, 1);
  }
  return 1;
}

int declare(lua_State* L, const char* kind) {
  if (lua_type(L, 1) != LUA_TSTRING || lua_objlen(L, 1) == 0)
    raise_usage(L, error_kind::bad_runbook, std::string(kind) + " needs a name: " + kind + " \"name\" { ... }");
  std::string source;
  int line = 0;
  caller_position(L, 1, source, line);
  lua_pushstring(L, kind);
  lua_pushvalue(L, 1);
  lua_pushstring(L, source.c_str());
  lua_pushinteger(L, line);
  lua_pushcclosure(L, trampoline<l_dsl_declare>, 4);
  return 1;
}

int l_dsl_runbook(lua_State* L) { return declare(L, "runbook"); }
int l_dsl_phase(lua_State* L) { return declare(L, "phase"); }
int l_dsl_step(lua_State* L) { return declare(L, "step"); }
int l_dsl_watch(lua_State* L) { return declare(L, "watch"); }
int l_dsl_trigger(lua_State* L) { return declare(L, "trigger"); }
int l_dsl_checklist(lua_State* L) { return declare(L, "checklist"); }

/// check(cond, message, ...): raises a check_failed error at the caller's line when cond is
/// false or nil; returns cond otherwise. Extra arguments format the message.
int l_dsl_check(lua_State* L) {
  if (lua_toboolean(L, 1)) {
    lua_settop(L, 1);
    return 1;
  }
  std::string message = "check failed";
  int n = lua_gettop(L);
  if (n >= 2 && (lua_type(L, 2) == LUA_TSTRING || lua_type(L, 2) == LUA_TNUMBER)) {
    if (n > 2) {
      lua_getglobal(L, "string");  // the real string table, outside any environment
      lua_getfield(L, -1, "format");
      for (int i = 2; i <= n; ++i) lua_pushvalue(L, i);
      lua_call(L, n - 1, 1);
      message = lua_tostring(L, -1);
    } else {
      message = lua_tostring(L, 2);
    }
  }
  run::step_error e = make_step_error(error_kind::check_failed, message, "check");
  caller_position(L, 1, e.source, e.line);
  raise(L, e);
}

}  // namespace

void open_dsl(sandbox& sb) {
  lua_State* L = sb.state();
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, k_declarations);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, k_known);
  lua_pushcfunction(L, trampoline<l_dsl_runbook>);
  sb.set_global("runbook");
  lua_pushcfunction(L, trampoline<l_dsl_phase>);
  sb.set_global("phase");
  lua_pushcfunction(L, trampoline<l_dsl_step>);
  sb.set_global("step");
  lua_pushcfunction(L, trampoline<l_dsl_watch>);
  sb.set_global("watch");
  lua_pushcfunction(L, trampoline<l_dsl_trigger>);
  sb.set_global("trigger");
  lua_pushcfunction(L, trampoline<l_dsl_checklist>);
  sb.set_global("checklist");
  lua_pushcfunction(L, trampoline<l_dsl_check>);
  sb.set_global("check");
}

bool read_declaration(lua_State* L, int idx, declaration& out) {
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  if (lua_type(L, idx) != LUA_TTABLE) return false;
  lua_getfield(L, LUA_REGISTRYINDEX, k_known);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  lua_remove(L, -2);
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pop(L, 1);
    return false;
  }
  // stack: record (made by l_dsl_declare: every field has the type read here)
  auto text = [&](const char* key) {
    lua_getfield(L, -1, key);
    size_t n = 0;
    const char* s = lua_tolstring(L, -1, &n);
    std::string v = s ? std::string(s, n) : std::string();
    lua_pop(L, 1);
    return v;
  };
  out.kind = text("kind");
  out.name = text("name");
  out.source = text("source");
  lua_getfield(L, -1, "line");
  out.line = static_cast<int>(lua_tointeger(L, -1));
  lua_pop(L, 1);
  lua_getfield(L, -1, "spec");
  lua_remove(L, -2);
  return true;
}

void push_runbook_declarations(lua_State* L) { lua_getfield(L, LUA_REGISTRYINDEX, k_declarations); }

void clear_runbook_declarations(lua_State* L) {
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, k_declarations);
}

}  // namespace rb::lua
