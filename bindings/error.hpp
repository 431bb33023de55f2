// Error conversion across the Lua boundary: the one trampoline, Lua error tables, tracebacks.
#pragma once

#include <exception>
#include <optional>
#include <string>

#include <lua.hpp>

#include "engine/error.hpp"
#include "engine/run/model.hpp"

namespace rb::lua {

/// Pushes a structured error table {kind=, class=, message=, sqlstate=, detail=, hint=,
/// source=, line=} with a __tostring that reads well.
void push_error(lua_State* L, const run::step_error& err);

/// Reads any Lua error value (a string "file:12: msg", an error table, anything else) as a
/// step_error. Does not pop.
run::step_error to_step_error(lua_State* L, int idx);

/// A step_error for an engine exception.
run::step_error from_exception(const std::exception& e);

/// Raises `err` as a Lua error. Never returns.
[[noreturn]] void raise(lua_State* L, const run::step_error& err);

/// Raises a sandbox/usage error at the caller's position ("file:line: message").
[[noreturn]] void raise_usage(lua_State* L, error_kind kind, const std::string& message);

/// The message handler used for every call from C++ into Lua: turns the error into a table
/// and adds a traceback.
int traceback_handler(lua_State* L);

using binding_fn = int (*)(lua_State*);

/// The one trampoline every binding goes through. C++ exceptions never reach Lua: they are
/// caught here and raised as structured Lua errors after the catch block has ended (a Lua
/// error unwinds as a foreign exception, so there is no catch (...) anywhere).
template <binding_fn F>
int trampoline(lua_State* L) {
  std::optional<run::step_error> failure;
  try {
    return F(L);
  } catch (const std::exception& e) {
    failure = from_exception(e);
  }
  raise(L, *failure);
}

}  // namespace rb::lua
