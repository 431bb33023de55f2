// A guard's code as a Lua function: the engine's guard_body implemented over the sandbox.
#pragma once

#include "bindings/sandbox.hpp"
#include "engine/run/model.hpp"

namespace rb::lua {

/// Holds a registry reference to a guard function and calls it with a fresh ctx, under the
/// guard's deadline, through the traceback handler. It must return true, or false and a
/// reason (a string); anything else is an error: a broken guard, never a silent "no".
class lua_guard final : public run::guard_body {
 public:
  /// Takes the function at `fn_idx`.
  lua_guard(sandbox& sb, int fn_idx);
  ~lua_guard() override;
  lua_guard(const lua_guard&) = delete;
  lua_guard& operator=(const lua_guard&) = delete;

  run::call_result check(const run::step_call& call) override;

 private:
  sandbox& m_sb;
  int m_fn = LUA_NOREF;
};

}  // namespace rb::lua
