// Lua module: the ctx table handed to run, verify, rollback and when.
#include "bindings/ctx.hpp"

#include "bindings/convert.hpp"
#include "bindings/db.hpp"
#include "bindings/error.hpp"
#include "bindings/sandbox.hpp"
#include "engine/run/context.hpp"
#include "engine/util/json_text.hpp"

namespace rb::lua {
namespace {

/// ctx.log(...): joins its arguments like print, shows them and audits a `log` record.
int l_ctx_log(lua_State* L) {
  int n = lua_gettop(L);
  std::string line;
  for (int i = 1; i <= n; ++i) {
    if (lua_type(L, i) == LUA_TTABLE && i == 1 && n == 1) {
      line = json_text(to_json(L, i));
      break;
    }
    lua_getglobal(L, "tostring");
    lua_pushvalue(L, i);
    lua_call(L, 1, 1);
    if (i > 1) line += ' ';
    if (const char* s = lua_tostring(L, -1)) line += s;
    lua_pop(L, 1);
  }
  sandbox& sb = sandbox::from(L);
  if (!sb.current_run()) raise_usage(L, error_kind::usage, "ctx.log can only be used while the step runs");
  sb.current_run()->log(line);
  return 0;
}

void set_string(lua_State* L, const char* key, const std::string& value) {
  lua_pushlstring(L, value.data(), value.size());
  lua_setfield(L, -2, key);
}

}  // namespace

void push_ctx(lua_State* L, const run::step_call& call) {
  lua_createtable(L, 0, 8);
  set_string(L, "runbook", call.book.name);
  set_string(L, "phase", call.phase.name);
  set_string(L, "step", call.step.name);
  lua_pushinteger(L, call.attempt);
  lua_setfield(L, -2, "attempt");
  // True in a step declared with `confirm` (it only runs once confirmed): stdlib functions that
  // destroy data (backup.restore) insist on it.
  lua_pushboolean(L, call.step.confirm.has_value());
  lua_setfield(L, -2, "confirmed");
  if (!call.book.title.empty()) set_string(L, "title", call.book.title);
  if (call.ctx) {
    set_string(L, "run", call.ctx->run_id());
    // For templates and alerts: where the run is, how long it has taken, what failed.
    if (call.ctx->target() && call.ctx->target()->configured()) set_string(L, "target", call.ctx->target()->target().name);
    lua_pushnumber(L, std::chrono::duration<double>(std::chrono::steady_clock::now() - call.ctx->started()).count());
    lua_setfield(L, -2, "elapsed");
    if (const auto& f = call.ctx->failure()) {
      lua_createtable(L, 0, 2);
      set_string(L, "step", f->step);
      set_string(L, "error", f->error);
      lua_setfield(L, -2, "failure");
    }
    push_json(L, call.ctx->params());
  } else {
    lua_newtable(L);
  }
  lua_setfield(L, -2, "params");
  lua_pushcfunction(L, trampoline<l_ctx_log>);
  lua_setfield(L, -2, "log");
  push_ctx_db(L);
  lua_setfield(L, -2, "db");
}

}  // namespace rb::lua
