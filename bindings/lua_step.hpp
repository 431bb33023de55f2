// A step's code as Lua functions: the engine's step_body implemented over the sandbox.
#pragma once

#include "bindings/sandbox.hpp"
#include "engine/run/model.hpp"

namespace rb::lua {

/// Holds registry references to a step's run / verify / rollback / when functions and calls
/// them with a fresh ctx, under the step's deadline, through the traceback handler.
class lua_step final : public run::step_body {
 public:
  /// Takes the functions from the spec table at `spec_idx` (fields run, verify, rollback, when).
  lua_step(sandbox& sb, int spec_idx);
  ~lua_step() override;
  lua_step(const lua_step&) = delete;
  lua_step& operator=(const lua_step&) = delete;

  run::call_result run(const run::step_call& call) override;
  run::call_result verify(const run::step_call& call) override;
  run::call_result rollback(const run::step_call& call) override;
  run::call_result when(const run::step_call& call) override;

 private:
  run::call_result invoke(int ref, const run::step_call& call, bool pass_result, bool keep_result,
                          const char* part);

  sandbox& m_sb;
  int m_run = LUA_NOREF, m_verify = LUA_NOREF, m_rollback = LUA_NOREF, m_when = LUA_NOREF;
  int m_result = LUA_NOREF;  ///< what the last successful run returned, handed to verify
};

}  // namespace rb::lua
