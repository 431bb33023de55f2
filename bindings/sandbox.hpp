// The Lua sandbox: one LuaJIT state built from an allow-list, text-only loading, a memory
// limit, a time limit that pcall cannot swallow, and a `require` confined to known directories.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <lua.hpp>

#include "engine/run/model.hpp"
#include "engine/util/clock.hpp"

namespace rb::run {
class run_context;
class stop_source;
}

namespace rb::lua {

struct sandbox_options {
  std::size_t memory_limit = std::size_t{256} << 20;     ///< bytes the Lua heap may use
  std::vector<std::filesystem::path> module_path;        ///< where `require` looks, in order
  /// How long a call may go on past its deadline, or past the operator's cancel, before the
  /// watchdog ends the process. Every loop the engine knows is stopped well before (the count
  /// hook, bounded pattern matching, statement and shell limits); this is the backstop for
  /// code stuck in some C function, and leaves the journal resumable.
  std::chrono::milliseconds watchdog_grace{4000};
};

/// `message` with Lua's shortened "...tail:12:" chunk name replaced by the full `file` path.
std::string full_paths(std::string message, const std::string& file);

/// One sandboxed Lua state. Runbook code only ever sees environments made by push_env: the
/// allow-listed base functions, copies of string/table/math/coroutine/bit, a safe os subset,
/// and the runbook modules. There is no ffi, io, debug, package, os.execute, dofile,
/// loadfile or string.dump, and load/loadstring accept source text only. The JIT is off so
/// that the instruction-count hook enforcing time limits always fires.
class sandbox {
 public:
  explicit sandbox(sandbox_options opts = {});
  ~sandbox();
  sandbox(const sandbox&) = delete;
  sandbox& operator=(const sandbox&) = delete;

  lua_State* state() const { return m_L; }
  /// The sandbox owning a state (stored in its registry).
  static sandbox& from(lua_State* L);

  /// Adds a global to every environment made from now on (used by open_all).
  void set_global(const char* name);  // stack: value -> (popped)
  /// Pushes a fresh environment: a copy of the globals, where reading an unknown global or
  /// assigning any global is an error.
  void push_env();

  /// Loads source text from a file into a function with a fresh environment and pushes it.
  /// Throws rb::error(bad_runbook) "file:line: message" on a syntax error or bytecode.
  void load_file(const std::filesystem::path& file);
  /// Same for text; `chunkname` is how errors name it.
  void load_string(std::string_view code, const std::string& chunkname);

  /// Calls the function below `nargs` arguments through the traceback handler, with a
  /// deadline on the clock of the current run (the real clock outside runs). The call is
  /// interrupted when the current run's stop token (or, outside runs, use_stop's) is
  /// requested. Returns nullopt on success (with `nresults` results pushed), or the error.
  std::optional<run::step_error> call(int nargs, int nresults,
                                      std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt,
                                      const std::string& what = "the runbook code");

  /// Raises the timeout or cancel error when the running call's deadline has passed or the
  /// operator asked to stop. For C code that loops (pattern matching): the count hook only
  /// fires between Lua instructions.
  static void check_interrupt(lua_State* L);
  /// Raises "stack overflow" when too much C stack is used below the outermost call.
  static void check_stack(lua_State* L);

  /// The run whose code is executing (for print, ctx.log, audit.note); null outside runs.
  /// Its clock times the deadlines of calls, its stop token interrupts them.
  run::run_context* current_run() const { return m_run; }
  void set_current_run(run::run_context* ctx) { m_run = ctx; }
  /// The stop token that interrupts calls made outside any run (none by default).
  void use_stop(const run::stop_source* stop) { m_stop = stop; }

  std::size_t memory_used() const { return m_used; }
  std::size_t memory_limit() const { return m_limit; }
  const std::vector<std::filesystem::path>& module_path() const { return m_opts.module_path; }

 private:
  static void* alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize);
  static void hook(lua_State* L, lua_Debug* ar);
  /// The sandbox of a state, cheaply (its allocator's data); null for other states.
  static sandbox* of(lua_State* L);
  void arm_hook(int count);
  void build_globals();
  void load_chunk(int status, const std::string& name, const char* message = nullptr);

  sandbox_options m_opts;
  lua_State* m_L = nullptr;
  std::size_t m_used = 0;
  std::size_t m_limit;
  bool m_over_limit = false;
  std::optional<std::chrono::steady_clock::time_point> m_deadline;
  std::string m_deadline_what;
  run::run_context* m_run = nullptr;
  const run::stop_source* m_stop = nullptr;  ///< outside runs
  /// The stop token and clock of the code running now.
  const run::stop_source* current_stop() const;
  const rb::clock& current_clock() const;
  std::uintptr_t m_stack_base = 0;  ///< C stack address at the outermost call(); 0 outside

  // The watchdog: a thread that ends the process when the outermost call() overruns.
  void watch();
  std::atomic<bool> m_in_call{false};
  std::atomic<unsigned> m_call_seq{0};
  std::atomic<long long> m_watch_deadline{0};  ///< steady_clock ticks of the call's deadline; 0: none
  const run::stop_source* m_watch_stop_token = nullptr;  ///< the outermost call's; guarded by m_watch_mutex
  std::mutex m_watch_mutex;
  std::condition_variable m_watch_wake;
  bool m_watch_stop = false;
  std::thread m_watchdog;
};

}  // namespace rb::lua
