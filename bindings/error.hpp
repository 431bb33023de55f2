// Error conversion across the Lua boundary: the one trampoline, Lua error tables, tracebacks.
#pragma once

#include <exception>
#include <optional>
#include <string>

#include <lua.hpp>

#include "engine/error.hpp"
#include "engine/run/model.hpp"

namespace rb::lua {

/// The most bytes of a message (or detail, hint, statement) taken from a Lua error value.
inline constexpr std::size_t k_max_error_text = 8192;

/// The one constructor of step errors: `message` (and every other text field set later by
/// the callers through it) made valid UTF-8 and bounded, class defaulting to the kind's name.
run::step_error make_step_error(error_kind kind, const std::string& message, const std::string& klass = {});

/// Pushes a structured error table {kind=, class=, message=, sqlstate=, detail=, hint=,
/// source=, line=} with a __tostring that reads well (its metatable is locked).
void push_error(lua_State* L, const run::step_error& err);

/// Reads any Lua error value (a string "file:12: msg", an error table, nil, userdata, a huge
/// string ...) as a step_error with bounded, valid UTF-8 text. Raw access only: no metamethod
/// of the value runs, so this never raises and never hangs. Does not pop.
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

/// The one protected call from C++ into Lua: calls the function below `nargs` arguments
/// through traceback_handler. Returns lua_pcall's status; on error the converted error table
/// (or, for LUA_ERRMEM, whatever Lua left) is on top.
int protected_call(lua_State* L, int nargs, int nresults);

/// Raises "stack overflow" when the C stack used since the outermost sandbox call passes its
/// budget: recursion through C functions (gsub callbacks, sort comparators, __tostring from
/// string.format, bindings calling back into Lua) ends as a Lua error, never as SIGSEGV.
/// Called by the trampoline and by the sandbox's call hook. (Defined in sandbox.cpp.)
void check_c_stack(lua_State* L);

using binding_fn = int (*)(lua_State*);

/// True when `f` is an instance of trampoline<> (for the test that walks every function a
/// runbook can reach and checks each C function is wrapped).
bool is_trampoline(lua_CFunction f);

template <binding_fn F>
int trampoline(lua_State* L);
template <binding_fn F>
int finalizer(lua_State* L);

namespace detail {
bool note_trampoline(lua_CFunction f);
/// Each instance of trampoline<F> adds itself to the set is_trampoline reads, at start-up.
template <binding_fn F>
struct trampoline_note {
  static bool noted;
};
template <binding_fn F>
bool trampoline_note<F>::noted = note_trampoline(&trampoline<F>) && note_trampoline(&finalizer<F>);
}  // namespace detail

/// The one trampoline every lua_CFunction of runbook goes through. C++ exceptions never reach
/// Lua: they are caught here and raised as structured Lua errors after the catch block has
/// ended (a Lua error unwinds as a foreign exception, so there is no catch (...) anywhere).
/// It also bounds recursion through C functions (check_c_stack).
template <binding_fn F>
int trampoline(lua_State* L) {
  static_cast<void>(detail::trampoline_note<F>::noted);
  check_c_stack(L);
  std::optional<run::step_error> failure;
  try {
    return F(L);
  } catch (const std::exception& e) {
    failure = from_exception(e);
  }
  raise(L, *failure);
}

/// The trampoline of __gc metamethods: no stack check and never a Lua error (a finalizer's
/// error would be raised again from whatever allocation ran the collector, and the resource,
/// such as a db.sandbox() PostgreSQL, would be left behind). F only destroys C++ objects;
/// an exception from it is dropped.
template <binding_fn F>
int finalizer(lua_State* L) {
  static_cast<void>(detail::trampoline_note<F>::noted);
  try {
    return F(L);
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace rb::lua
