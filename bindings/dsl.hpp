// The runbook language: runbook "name" { ... }, phase "name" { ... }, step "name" { ... }, check.
#pragma once

#include <string>

#include <lua.hpp>

namespace rb::lua {
class sandbox;

/// Registers runbook, phase, step, watch, trigger and check as globals of the sandbox.
void open_dsl(sandbox& sb);

/// A declaration made by one of the constructors, read back by the loader.
struct declaration {
  std::string kind;    ///< "runbook", "phase", "step", "watch" or "trigger"
  std::string name;
  std::string source;  ///< file of the call
  int line = 0;
};

/// If the value at idx is a declaration table, fills `out`, pushes its spec table and
/// returns true; otherwise pushes nothing and returns false.
bool read_declaration(lua_State* L, int idx, declaration& out);

/// Pushes the list of runbook declarations made since the last clear (a sequence).
void push_runbook_declarations(lua_State* L);
void clear_runbook_declarations(lua_State* L);

}  // namespace rb::lua
