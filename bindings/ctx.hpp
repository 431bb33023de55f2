// Lua module: the ctx table a step's functions receive (params, log, run, phase, step, attempt).
#pragma once

#include <lua.hpp>

#include "engine/run/model.hpp"

namespace rb::lua {

/// Pushes a fresh ctx for one call: ctx.run, ctx.runbook, ctx.phase, ctx.step, ctx.attempt,
/// ctx.params (a copy), ctx.log(...).
void push_ctx(lua_State* L, const run::step_call& call);

}  // namespace rb::lua
