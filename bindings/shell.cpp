// Lua module: shell. shell.run{ "pg_dump", "-Fc", "-f", path, timeout = "10m", env = {...},
// cwd = "...", stdin = "...", check = true } runs a program without a shell, in its own process
// group (killed whole, grandchildren too, on timeout or at the step's deadline), and returns
// code, stdout, stderr, duration (seconds). shell.sh("script", {...}) goes through /bin/sh -c,
// and its audit record says so. Every run is a `shell` audit record: argv, exit code, duration,
// output tails — with secrets redacted (before a tail is cut, so no end of one survives).
#include "bindings/shell.hpp"

#include "bindings/convert.hpp"
#include "bindings/error.hpp"
#include "bindings/sandbox.hpp"
#include "engine/run/command.hpp"
#include "engine/run/context.hpp"
#include "engine/shell/process.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/secrets.hpp"

namespace rb::lua {
namespace {


/// Reads the option fields of the table at idx into `o` (argv is read by the caller).
void read_options(lua_State* L, int idx, shell::process_options& o, bool& check) {
  lua_getfield(L, idx, "timeout");
  if (lua_type(L, -1) == LUA_TSTRING) {
    std::chrono::milliseconds d{};
    if (!try_parse_duration(lua_tostring(L, -1), d))
      raise_usage(L, error_kind::usage, std::string("shell: timeout '") + lua_tostring(L, -1) + "' is not a duration");
    o.timeout = d;
  } else if (lua_type(L, -1) == LUA_TNUMBER) {
    std::chrono::milliseconds d{};
    if (!duration_from_seconds(lua_tonumber(L, -1), d))
      raise_usage(L, error_kind::usage, "shell: timeout must be a number of seconds from 0 to a year");
    o.timeout = d;
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "cwd");
  if (lua_type(L, -1) == LUA_TSTRING) o.cwd = std::filesystem::path(lua_tostring(L, -1));
  lua_pop(L, 1);
  lua_getfield(L, idx, "stdin");
  if (lua_type(L, -1) == LUA_TSTRING) o.stdin_data = to_string(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "check");
  check = lua_toboolean(L, -1) != 0;
  lua_pop(L, 1);
  lua_getfield(L, idx, "env");
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
        raise_usage(L, error_kind::usage, "shell: env must map names to strings");
      lua_pushvalue(L, -1);
      o.env[lua_tostring(L, -3)] = lua_tostring(L, -1);
      lua_pop(L, 2);
    }
  }
  lua_pop(L, 1);
}

/// Runs it, audits it, and pushes code, stdout, stderr, duration (or raises with check).
int run_process(lua_State* L, shell::process_options o, bool check, bool via_shell, const std::string& shown) {
  sandbox& sb = sandbox::from(L);
  run::run_context* ctx = sb.current_run();
  if (!ctx) raise_usage(L, error_kind::usage, "shell can only be used while a step runs");
  shell::process_result r = run::run_command(*ctx, o, via_shell);  // bounded, cancellable, audited
  if (r.cancelled) {
    raise(L, make_step_error(error_kind::cancelled,
                             "command '" + secrets::redact(shown) + "' was killed: interrupted by the operator", "cancelled"));
  }
  if (r.timed_out) {
    raise(L, make_step_error(error_kind::timeout,
                             "command '" + secrets::redact(shown) + "' was killed after " + format_duration(o.timeout), "timeout"));
  }
  if (check && !r.ok()) {
    raise(L, make_step_error(error_kind::shell,
                             "command '" + secrets::redact(shown) + "' " +
                                 (r.term_signal ? "was killed by signal " + std::to_string(r.term_signal)
                                                : "exited with code " + std::to_string(r.exit_code)) +
                                 (r.err.empty() ? "" : ": " + secrets::redact_tail(r.err, 500, r.err_total > r.err.size())),
                             "shell"));
  }
  lua_pushnumber(L, r.exit_code);
  lua_pushlstring(L, r.out.data(), r.out.size());
  lua_pushlstring(L, r.err.data(), r.err.size());
  lua_pushnumber(L, static_cast<double>(r.duration.count()) / 1000.0);
  return 4;
}

int l_shell_run(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  shell::process_options o;
  std::size_t n = lua_objlen(L, 1);
  for (std::size_t i = 1; i <= n; ++i) {
    lua_rawgeti(L, 1, static_cast<int>(i));
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      raise_usage(L, error_kind::usage, "shell.run: argument " + std::to_string(i) + " must be a string");
    o.argv.push_back(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  if (o.argv.empty()) raise_usage(L, error_kind::usage, "shell.run needs a program: shell.run{ \"pg_dump\", ... }");
  bool check = false;
  read_options(L, 1, o, check);
  std::string shown = o.argv[0];
  return run_process(L, std::move(o), check, false, shown);
}

int l_shell_sh(lua_State* L) {
  std::string script = luaL_checkstring(L, 1);
  shell::process_options o;
  o.argv = {"/bin/sh", "-c", script};
  bool check = false;
  if (lua_type(L, 2) == LUA_TTABLE) read_options(L, 2, o, check);
  std::string shown = "sh -c " + script;
  return run_process(L, std::move(o), check, true, shown);
}

}  // namespace

void open_shell(sandbox& sb) {
  lua_State* L = sb.state();
  lua_newtable(L);
  lua_pushcfunction(L, trampoline<l_shell_run>);
  lua_setfield(L, -2, "run");
  lua_pushcfunction(L, trampoline<l_shell_sh>);
  lua_setfield(L, -2, "sh");
  sb.set_global("shell");
}

}  // namespace rb::lua
