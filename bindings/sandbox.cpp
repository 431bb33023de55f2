// The Lua sandbox: allow-listed environments, text-only loading, memory and time limits.
#include "bindings/sandbox.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bindings/error.hpp"
#include "bindings/pattern.hpp"
#include "engine/run/context.hpp"
#include "engine/run/stop.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::lua {
namespace {

constexpr const char* k_self = "rb.sandbox";
constexpr const char* k_globals = "rb.globals";
constexpr const char* k_env_meta = "rb.env_meta";
constexpr const char* k_loaded = "rb.loaded";
constexpr std::size_t k_reserve = std::size_t{8} << 20;  ///< headroom to report a memory error
constexpr int k_hook_every = 1000;                       ///< instructions between deadline checks
/// C stack a call may use below its start. Lua-to-Lua calls use none (LuaJIT keeps them on
/// its own stack); only calls through C functions do (gsub callbacks, sort comparators,
/// string.format's __tostring, bindings calling back into Lua: ~10 KiB a level). 2 MiB of
/// the 8 MiB main-thread stack allows ~200 levels and leaves room to report the overflow.
constexpr std::uintptr_t k_c_stack_budget = std::uintptr_t{2} << 20;
constexpr const char* k_builtins = "rb.builtins";

/// Base functions runbook code may use; everything else of the base library is left out.
constexpr const char* k_base_allowed[] = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "select", "tonumber",
    "tostring", "type", "unpack", "rawequal", "rawget", "rawset", "setmetatable", "getmetatable",
    "_VERSION",
};
/// Libraries copied whole into each environment (string without dump).
constexpr const char* k_libs_copied[] = {"string", "table", "math", "coroutine", "bit"};
/// The safe part of os.
constexpr const char* k_os_allowed[] = {"time", "clock", "date", "difftime"};

void push_registry(lua_State* L, const char* key) { lua_getfield(L, LUA_REGISTRYINDEX, key); }

int l_env_index(lua_State* L) {
  // stack: env, key
  const char* key = lua_tostring(L, 2);
  raise_usage(L, error_kind::sandbox,
              std::string("undefined global '") + (key ? key : "?") + "' (runbooks can only use the runbook API and the safe standard library)");
}

int l_env_newindex(lua_State* L) {
  const char* key = lua_tostring(L, 2);
  raise_usage(L, error_kind::sandbox,
              std::string("assigning the global '") + (key ? key : "?") + "' is not allowed; declare it local");
}

std::string join_args_tostring(lua_State* L) {
  int n = lua_gettop(L);
  std::string out;
  lua_getfield(L, LUA_REGISTRYINDEX, k_globals);
  lua_getfield(L, -1, "tostring");
  for (int i = 1; i <= n; ++i) {
    lua_pushvalue(L, -1);
    lua_pushvalue(L, i);
    lua_call(L, 1, 1);
    size_t len = 0;
    const char* s = lua_tolstring(L, -1, &len);
    if (i > 1) out += '\t';
    if (s) out.append(s, len);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return out;
}

int l_base_print(lua_State* L) {
  std::string line = join_args_tostring(L);
  sandbox& sb = sandbox::from(L);
  if (sb.current_run()) sb.current_run()->log(line);
  else std::cerr << secrets::redact(line) << "\n";  // load-time code: no run to audit it
  return 0;
}

/// load(chunk [, chunkname [, mode [, env]]]) and loadstring(chunk [, chunkname]): source only.
int l_base_load(lua_State* L) {
  size_t len = 0;
  const char* code = luaL_checklstring(L, 1, &len);
  const char* name = luaL_optstring(L, 2, "=(load)");
  const char* mode = luaL_optstring(L, 3, "t");
  if (std::strchr(mode, 'b'))
    raise_usage(L, error_kind::sandbox, "loading bytecode is not allowed; load takes source text only");
  bool has_env = lua_type(L, 4) == LUA_TTABLE;
  int st = luaL_loadbufferx(L, code, len, name, "t");
  if (st != 0) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;  // nil, message — as load does
  }
  if (has_env) lua_pushvalue(L, 4);
  else sandbox::from(L).push_env();
  lua_setfenv(L, -2);
  return 1;
}

}  // namespace

std::string full_paths(std::string message, const std::string& file) {
  // Lua shortens long chunk names to "...tail"; put the whole path back.
  if (message.rfind("...", 0) == 0) {
    std::size_t colon = message.find(':');
    if (colon != std::string::npos) {
      std::string tail = message.substr(3, colon - 3);
      if (file.size() >= tail.size() && file.compare(file.size() - tail.size(), tail.size(), tail) == 0)
        message = file + message.substr(colon);
    }
  }
  return message;
}

namespace {

bool valid_module_name(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.back() == '.') return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return false;
  return name.find("..") == std::string::npos;
}

int l_base_require(lua_State* L) {
  std::string name = luaL_checkstring(L, 1);
  push_registry(L, k_loaded);
  lua_getfield(L, -1, name.c_str());
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) == LUA_TLIGHTUSERDATA)
      raise_usage(L, error_kind::bad_runbook, "module '" + name + "' requires itself (a require loop)");
    return 1;
  }
  lua_pop(L, 1);
  if (!valid_module_name(name)) raise_usage(L, error_kind::bad_runbook, "'" + name + "' is not a module name");
  sandbox& sb = sandbox::from(L);
  std::string rel = name;
  for (char& c : rel)
    if (c == '.') c = '/';
  std::filesystem::path found;
  std::vector<std::string> tried;
  for (const auto& dir : sb.module_path()) {
    for (const auto& candidate : {dir / (rel + ".lua"), dir / rel / "init.lua"}) {
      std::error_code ec;
      tried.push_back(candidate.string());
      if (std::filesystem::is_regular_file(candidate, ec)) {
        found = candidate;
        break;
      }
    }
    if (!found.empty()) break;
  }
  if (found.empty())
    raise_usage(L, error_kind::bad_runbook, "module '" + name + "' not found; looked in: " + join(tried, ", "));
  lua_pushlightuserdata(L, &sb);  // loading marker, detects loops
  lua_setfield(L, -2, name.c_str());
  // Load and run the module protected, so that a failure clears the marker and the next
  // require reports the real error again instead of a loop.
  int loaded_idx = lua_gettop(L);
  std::optional<run::step_error> failure;
  try {
    sb.load_file(found);
  } catch (const std::exception& e) {
    failure = from_exception(e);
  }
  if (!failure) {
    lua_pushstring(L, name.c_str());
    if (protected_call(L, 1, 1) != 0) failure = to_step_error(L, -1);
  }
  if (failure) {
    lua_settop(L, loaded_idx);
    lua_pushnil(L);
    lua_setfield(L, loaded_idx, name.c_str());
    raise(L, *failure);
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name.c_str());
  return 1;
}

}  // namespace

sandbox::sandbox(sandbox_options opts) : m_opts(std::move(opts)), m_limit(m_opts.memory_limit) {
  m_L = lua_newstate(&sandbox::alloc, this);
  if (!m_L) throw error(error_kind::internal, "unable to create a Lua state");
  // Runbook code is glue: the time goes to the database. With the JIT off, the count hook
  // fires in every loop, so time limits hold (JIT-compiled traces do not check hooks).
  luaJIT_setmode(m_L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  lua_pushlightuserdata(m_L, this);
  lua_setfield(m_L, LUA_REGISTRYINDEX, k_self);
  for (lua_CFunction open : {luaopen_base, luaopen_string, luaopen_table, luaopen_math, luaopen_bit, luaopen_os}) {
    lua_pushcfunction(m_L, open);
    lua_call(m_L, 0, 0);
  }
  build_globals();
  arm_hook(k_hook_every);
  // The watchdog thread starts with the first call: a sandbox that never runs code (or runs
  // it only in a forked child) has no thread, and forking from a threaded process is avoided.
}

sandbox::~sandbox() {
  {
    std::lock_guard<std::mutex> lock(m_watch_mutex);
    m_watch_stop = true;
  }
  m_watch_wake.notify_all();
  if (m_watchdog.joinable()) m_watchdog.join();
  if (m_L) lua_close(m_L);
}

namespace {

/// Ends the process from the watchdog thread: only async-signal-safe calls, since the main
/// thread is somewhere in C code. Every journal record is one write, so the journal is intact
/// and the run can be resumed or rolled back.
[[noreturn]] void end_stuck_process(const char* why, int code) {
  static const char head[] = "\nrunbook: the runbook code ";
  static const char tail[] =
      " but is stuck in a C function; ending the process (finish the run with 'runbook resume RUN' or "
      "'runbook rollback RUN')\n";
  ssize_t ignored = ::write(STDERR_FILENO, head, sizeof head - 1);
  ignored = ::write(STDERR_FILENO, why, std::strlen(why));
  ignored = ::write(STDERR_FILENO, tail, sizeof tail - 1);
  (void)ignored;
  ::_exit(code);
}

}  // namespace

void sandbox::watch() {
  using clock = std::chrono::steady_clock;
  std::unique_lock<std::mutex> lock(m_watch_mutex);
  bool cancelled = false;  // a cancel was seen during call number cancel_call, at cancel_seen
  clock::time_point cancel_seen{};
  unsigned cancel_call = 0;
  const auto grace = m_opts.watchdog_grace;
  while (!m_watch_stop) {
    m_watch_wake.wait_for(lock, std::chrono::milliseconds(100));
    if (m_watch_stop) break;
    if (!m_in_call.load()) {
      cancelled = false;
      continue;
    }
    auto now = clock::now();
    unsigned call = m_call_seq.load();
    // The token of the outermost call's run: only that run's cancel counts.
    if (m_watch_stop_token && m_watch_stop_token->requested()) {
      if (!cancelled || cancel_call != call) {
        cancelled = true;
        cancel_seen = now;
        cancel_call = call;
      } else if (now - cancel_seen > grace) {
        end_stuck_process("was interrupted by the operator", exit_codes::cancelled);
      }
    } else {
      cancelled = false;
    }
    long long deadline = m_watch_deadline.load();
    if (deadline != 0 && m_call_seq.load() == call && m_in_call.load() &&
        now > clock::time_point(clock::duration(deadline)) + grace)
      end_stuck_process("exceeded its time limit", exit_codes::failed);
  }
}

sandbox* sandbox::of(lua_State* L) {
  void* ud = nullptr;
  if (lua_getallocf(L, &ud) != &sandbox::alloc) return nullptr;
  return static_cast<sandbox*>(ud);
}

sandbox& sandbox::from(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, k_self);
  auto* sb = static_cast<sandbox*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return *sb;
}

void* sandbox::alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
  auto* sb = static_cast<sandbox*>(ud);
  std::size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    std::free(ptr);
    sb->m_used -= old;
    return nullptr;
  }
  if (nsize > old) {
    std::size_t allowed = sb->m_limit + (sb->m_over_limit ? k_reserve : 0);
    if (sb->m_used + (nsize - old) > allowed) {
      sb->m_over_limit = true;
      return nullptr;
    }
  }
  void* p = std::realloc(ptr, nsize);
  if (!p) return nullptr;
  sb->m_used = sb->m_used - old + nsize;
  return p;
}

void sandbox::arm_hook(int count) {
  // Calls too: each Lua function entered checks the C stack (check_stack), so recursion that
  // goes through C functions ends as an error before it overflows the real stack.
  lua_sethook(m_L, &sandbox::hook, LUA_MASKCOUNT | LUA_MASKCALL, count);
}

void sandbox::hook(lua_State* L, lua_Debug* ar) {
  if (ar->event == LUA_HOOKCALL) {
    check_stack(L);
    return;
  }
  check_interrupt(L);
}

const run::stop_source* sandbox::current_stop() const { return m_run ? &m_run->stop() : m_stop; }

const rb::clock& sandbox::current_clock() const {
  return m_run ? m_run->clock() : static_cast<const rb::clock&>(system_clock::instance());
}

void sandbox::check_interrupt(lua_State* L) {
  sandbox* sb = of(L);
  if (!sb) return;
  const run::stop_source* stop = sb->current_stop();
  if (stop && stop->requested()) {
    sb->arm_hook(1);
    raise(L, make_step_error(error_kind::cancelled, sb->m_deadline_what + " was interrupted by the operator", "cancelled"));
  }
  if (!sb->m_deadline || sb->current_clock().now() < *sb->m_deadline) return;
  // From now on check at every instruction: whatever code a pcall returns to raises again at
  // once, so pcall cannot swallow the limit (call() restores the normal interval).
  sb->arm_hook(1);
  raise(L, make_step_error(error_kind::timeout, sb->m_deadline_what + " exceeded its time limit and was stopped", "timeout"));
}

void sandbox::check_stack(lua_State* L) {
  sandbox* sb = of(L);
  if (!sb || !sb->m_stack_base) return;
  auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  if (here > sb->m_stack_base || sb->m_stack_base - here <= k_c_stack_budget) return;
  raise(L, make_step_error(error_kind::step_failed,
                           "stack overflow (too many nested calls through C functions: a recursive gsub "
                           "callback, sort comparator, __tostring or binding?)",
                           "stack_overflow"));
}

void check_c_stack(lua_State* L) { sandbox::check_stack(L); }

void sandbox::build_globals() {
  lua_State* L = m_L;
  // The string metatable is shared by every string: hide it so no one can reach the real
  // string table through ("").__index and change it for everyone.
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  // Remove string.dump from the real table too: nothing in runbook needs bytecode.
  lua_getglobal(L, "string");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  // Pattern matching that the time limit and the operator can stop (LuaJIT's runs in C,
  // where the count hook never fires: a catastrophic pattern would run for hours).
  open_bounded_patterns(L);
  lua_pop(L, 1);

  lua_newtable(L);  // globals template
  for (const char* name : k_base_allowed) {
    lua_getglobal(L, name);
    lua_setfield(L, -2, name);
  }
  for (const char* lib : k_libs_copied) {
    lua_getglobal(L, lib);
    lua_setfield(L, -2, lib);
  }
  lua_getglobal(L, "os");
  lua_newtable(L);
  for (const char* name : k_os_allowed) {
    lua_getfield(L, -2, name);
    lua_setfield(L, -2, name);
  }
  lua_setfield(L, -3, "os");
  lua_pop(L, 1);
  lua_pushcfunction(L, trampoline<l_base_print>);
  lua_setfield(L, -2, "print");
  lua_pushcfunction(L, trampoline<l_base_load>);
  lua_setfield(L, -2, "load");
  lua_pushcfunction(L, trampoline<l_base_load>);
  lua_setfield(L, -2, "loadstring");
  lua_pushcfunction(L, trampoline<l_base_require>);
  lua_setfield(L, -2, "require");
  // Every C function of LuaJIT's own libraries a runbook can reach, before the runbook
  // modules are added: these are C, never throw C++ exceptions, and recursion through them
  // is bounded by the call hook. Every other C function must be a trampoline (a test checks).
  lua_newtable(L);
  int builtins = lua_gettop(L);
  // Marks the C function on top (and the C functions it holds, such as ipairs' iterator) as
  // a builtin; pops it.
  auto mark = [&](auto& self) -> void {
    if (lua_iscfunction(L, -1)) {
      for (int i = 1; lua_getupvalue(L, -1, i); ++i) self(self);
      lua_pushboolean(L, 1);
      lua_rawset(L, builtins);
    } else {
      lua_pop(L, 1);
    }
  };
  lua_pushnil(L);
  while (lua_next(L, builtins - 1) != 0) {
    // stack: globals, builtins, key, value
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, -2) != 0) mark(mark);
      lua_pop(L, 1);
    } else {
      mark(mark);
    }
  }
  lua_setfield(L, LUA_REGISTRYINDEX, k_builtins);
  lua_setfield(L, LUA_REGISTRYINDEX, k_globals);

  lua_newtable(L);
  lua_pushcfunction(L, trampoline<l_env_index>);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, trampoline<l_env_newindex>);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setfield(L, LUA_REGISTRYINDEX, k_env_meta);

  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, k_loaded);
}

void sandbox::set_global(const char* name) {
  // stack: value
  push_registry(m_L, k_globals);
  lua_insert(m_L, -2);
  lua_setfield(m_L, -2, name);
  lua_pop(m_L, 1);
}

void sandbox::push_env() {
  lua_State* L = m_L;
  lua_newtable(L);  // env
  push_registry(L, k_globals);
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    // stack: env, globals, key, value
    if (lua_type(L, -1) == LUA_TTABLE) {
      // A library: give this environment its own copy, so changes stay local.
      lua_newtable(L);
      lua_pushnil(L);
      while (lua_next(L, -3) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
      }
      // A callable library (alert{...}) keeps its metatable: ours, locked with __metatable.
      if (lua_getmetatable(L, -2)) lua_setmetatable(L, -2);
      lua_replace(L, -2);
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -5);
  }
  lua_pop(L, 1);
  push_registry(L, k_env_meta);
  lua_setmetatable(L, -2);
}

void sandbox::load_chunk(int status, const std::string& name, const char* message) {
  if (status != 0) {
    std::string msg = message ? message : lua_tostring(m_L, -1) ? lua_tostring(m_L, -1) : "unknown error";
    if (!message) lua_pop(m_L, 1);
    msg = full_paths(msg, name);
    if (msg.find("wrong mode") != std::string::npos || msg.find("binary") != std::string::npos ||
        msg.find("bytecode") != std::string::npos)
      msg = name + ": precompiled bytecode is not allowed; runbooks are loaded from source only";
    throw error(error_kind::bad_runbook, msg);
  }
  push_env();
  lua_setfenv(m_L, -2);
}

void sandbox::load_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw error(error_kind::io, "unable to read '" + file.string() + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string code = ss.str();
  if (!code.empty() && code[0] == '\x1b') load_chunk(LUA_ERRSYNTAX, file.string(), "binary chunk");
  std::string chunkname = "@" + file.string();
  load_chunk(luaL_loadbufferx(m_L, code.data(), code.size(), chunkname.c_str(), "t"), file.string());
}

void sandbox::load_string(std::string_view code, const std::string& chunkname) {
  std::string name = "@" + chunkname;
  load_chunk(luaL_loadbufferx(m_L, code.data(), code.size(), name.c_str(), "t"), chunkname);
}

std::optional<run::step_error> sandbox::call(int nargs, int nresults,
                                             std::optional<std::chrono::steady_clock::time_point> deadline,
                                             const std::string& what) {
  lua_State* L = m_L;
  int base = lua_gettop(L) - nargs;  // the function
  auto saved_deadline = m_deadline;
  std::string saved_what = m_deadline_what;
  bool outermost = m_stack_base == 0;
  if (outermost) {
    m_stack_base = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
    // The watchdog waits in real time: the deadline as the same time left on the real clock.
    m_watch_deadline = deadline ? current_clock().to_real(*deadline).time_since_epoch().count() : 0;
    ++m_call_seq;
    {
      std::lock_guard<std::mutex> lock(m_watch_mutex);
      m_watch_stop_token = current_stop();
    }
    if (!m_watchdog.joinable()) m_watchdog = std::thread([this] { watch(); });
    m_in_call = true;
  }
  m_deadline = deadline;
  m_deadline_what = what;
  int status = protected_call(L, nargs, nresults);
  if (outermost) {
    m_in_call = false;
    m_stack_base = 0;
    std::lock_guard<std::mutex> lock(m_watch_mutex);  // the token may end with the run
    m_watch_stop_token = nullptr;
  }
  m_deadline = saved_deadline;
  m_deadline_what = saved_what;
  arm_hook(k_hook_every);
  if (status == 0 && !m_over_limit) return std::nullopt;
  std::optional<run::step_error> err;
  if (status == LUA_ERRMEM || m_over_limit) {
    err = make_step_error(error_kind::memory,
                          what + " exceeded the Lua memory limit of " + std::to_string(m_limit >> 20) + " MiB", "memory");
  } else {
    err = to_step_error(L, -1);
  }
  lua_settop(L, base - 1);  // drop the error value, or results of a call that broke the limit
  m_over_limit = false;
  lua_gc(L, LUA_GCCOLLECT, 0);
  return err;
}

}  // namespace rb::lua
