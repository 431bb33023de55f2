// The Lua sandbox: one test per denied capability, what stays allowed, `require` confined to
// the module path, the time and memory limits, and errors crossing the C++/Lua boundary.
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bindings/convert.hpp"
#include "bindings/open_all.hpp"
#include "bindings/sandbox.hpp"
#include "engine/util/text.hpp"
#include "tests/support/child.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using rb::error_kind;
using rb::run::step_error;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using steady = std::chrono::steady_clock;

/// What a chunk did: the error it raised, or the values it returned (as JSON).
struct outcome {
  std::optional<step_error> error;
  json values = json::array();
  bool ok() const { return !error; }
};

/// Runs `code` as the chunk "test.lua" in a fresh environment of `sb`, with `args` as its `...`.
outcome run(rb::lua::sandbox& sb, std::string_view code, const std::vector<std::string>& args = {},
            std::chrono::milliseconds limit = 5s) {
  lua_State* L = sb.state();
  int top = lua_gettop(L);
  sb.load_string(code, "test.lua");
  for (const auto& a : args) lua_pushlstring(L, a.data(), a.size());
  outcome out;
  out.error = sb.call(static_cast<int>(args.size()), LUA_MULTRET, steady::now() + limit, "the test code");
  if (!out.error)
    for (int i = top + 1; i <= lua_gettop(L); ++i) out.values.push_back(rb::lua::to_json(L, i));
  lua_settop(L, top);
  return out;
}

using rb::testing::child_report;
using rb::testing::in_child;

/// Lines describing an outcome for a child's report: the error kind and message, or "ok".
std::vector<std::string> describe(const outcome& o) {
  if (o.ok()) return {"ok", o.values.dump()};
  return {std::string(rb::kind_name(o.error->kind)), o.error->message};
}

/// Caps the child's data segment, so that if the sandbox's memory limit failed, the child
/// would fail to allocate instead of taking the machine's memory. (AddressSanitizer reserves
/// its own large mappings, so the cap is left out there.)
void cap_child_memory() {
#if !defined(__SANITIZE_ADDRESS__)
  rlimit lim{std::size_t{4} << 30, std::size_t{4} << 30};
  ::setrlimit(RLIMIT_DATA, &lim);
#endif
}

/// The child's peak resident memory, in MiB.
long peak_rss_mib() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;
}

/// Real LuaJIT bytecode for `return 42`, from string.dump in a plain (unsandboxed) state.
std::string bytecode_returning_42() {
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_dostring(L, "return string.dump(function() return 42 end)") != 0)
    throw std::runtime_error("could not make bytecode");
  size_t n = 0;
  const char* s = lua_tolstring(L, -1, &n);
  std::string out(s, n);
  lua_close(L);
  return out;
}

/// A sandbox with every module, as runbooks get it.
class Sandbox : public ::testing::Test {
 protected:
  std::unique_ptr<rb::lua::sandbox> sb = rb::lua::make_sandbox({});
  rb::testing::temp_dir dir{"rb-sandbox"};

  outcome run(std::string_view code, const std::vector<std::string>& args = {}) { return ::run(*sb, code, args); }

  /// The error `code` raised; fails the test when it ran without one.
  step_error error_of(std::string_view code, const std::vector<std::string>& args = {}) {
    outcome o = run(code, args);
    if (o.ok()) {
      ADD_FAILURE() << "expected an error from:\n" << code << "\nbut it returned " << o.values.dump();
      return {};
    }
    return *o.error;
  }
};

// ---- denied capabilities ----------------------------------------------------------------

TEST_F(Sandbox, DeniesFfi) {
  step_error e = error_of(R"(local ffi = require "ffi"
return ffi.C ~= nil)");
  EXPECT_THAT(e.message, HasSubstr("'ffi'"));
  e = error_of("return ffi.C ~= nil");
  EXPECT_EQ(e.kind, error_kind::sandbox);
  EXPECT_THAT(e.message, HasSubstr("'ffi'"));
}

TEST_F(Sandbox, DeniesIoLibrary) {
  fs::path target = dir.path() / "written-by-lua.txt";
  step_error e = error_of(R"(local f = io.open(..., "w")
f:write("escaped")
f:close())", {target.string()});
  EXPECT_EQ(e.kind, error_kind::sandbox);
  EXPECT_THAT(e.message, HasSubstr("'io'"));
  EXPECT_FALSE(fs::exists(target));
}

TEST_F(Sandbox, DeniesOsExecute) {
  fs::path target = dir.path() / "touched";
  step_error e = error_of(R"(return os.execute("touch " .. ...))", {target.string()});
  EXPECT_THAT(e.message, HasSubstr("execute"));
  EXPECT_FALSE(fs::exists(target));
}

TEST_F(Sandbox, DeniesOsExit) {
  child_report r = in_child([] {
    auto sb = rb::lua::make_sandbox({});
    return describe(::run(*sb, "os.exit(3)"));
  }, 20s);
  ASSERT_TRUE(r.finished);
  EXPECT_EQ(r.exit_code, 0) << "os.exit ended the process";
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_NE(r.lines[0], "ok");
  EXPECT_THAT(r.lines[1], HasSubstr("exit"));
}

TEST_F(Sandbox, DeniesOsRemove) {
  fs::path victim = dir.write("keep-me.txt", "precious");
  step_error e = error_of("return os.remove(...)", {victim.string()});
  EXPECT_THAT(e.message, HasSubstr("remove"));
  EXPECT_TRUE(fs::exists(victim));
}

TEST_F(Sandbox, DeniesOsRename) {
  fs::path from = dir.write("stay.txt", "here");
  fs::path to = dir.path() / "moved.txt";
  step_error e = error_of("return os.rename(...)", {from.string(), to.string()});
  EXPECT_THAT(e.message, HasSubstr("rename"));
  EXPECT_TRUE(fs::exists(from));
  EXPECT_FALSE(fs::exists(to));
}

TEST_F(Sandbox, DeniesOsGetenv) {
  ::setenv("RUNBOOK_SANDBOX_TEST_SECRET", "hunter2", 1);
  outcome o = run(R"(return os.getenv("RUNBOOK_SANDBOX_TEST_SECRET"))");
  ::unsetenv("RUNBOOK_SANDBOX_TEST_SECRET");
  ASSERT_FALSE(o.ok()) << "read the environment: " << o.values.dump();
  EXPECT_THAT(o.error->message, HasSubstr("getenv"));
}

TEST_F(Sandbox, DeniesOsTmpname) {
  step_error e = error_of("return os.tmpname()");
  EXPECT_THAT(e.message, HasSubstr("tmpname"));
}

TEST_F(Sandbox, DeniesDebugLibrary) {
  step_error e = error_of(R"(return debug.getinfo(1, "S").source)");
  EXPECT_EQ(e.kind, error_kind::sandbox);
  EXPECT_THAT(e.message, HasSubstr("'debug'"));
}

TEST_F(Sandbox, DeniesPackageAndLoadlib) {
  step_error e = error_of(R"(return package.loadlib("libc.so.6", "puts"))");
  EXPECT_EQ(e.kind, error_kind::sandbox);
  EXPECT_THAT(e.message, HasSubstr("'package'"));
}

TEST_F(Sandbox, DeniesWhatTheEditorSetupSaysIsNotThere) {
  // The .luarc.json `runbook init` writes tells the language server these libraries are absent
  // (runtime.builtin "disable"); the sandbox must really deny every one of them.
  for (const char* name : {"io", "debug", "package", "ffi", "jit", "utf8"}) {
    outcome o = run(std::string("return ") + name);
    EXPECT_FALSE(o.ok()) << "the global '" << name << "' is reachable: " << o.values.dump();
  }
  outcome t = run("return table.new == nil, table.clear == nil, string.buffer == nil, os.execute == nil");
  ASSERT_TRUE(t.ok()) << t.error->describe();
  EXPECT_EQ(t.values, json::parse("[true, true, true, true]"));
  for (const char* mod : {"io", "os", "debug", "package", "ffi", "jit", "jit.util", "jit.profile", "string.buffer",
                          "table.new", "table.clear", "utf8"}) {
    outcome o = run("return require(...)", {mod});
    EXPECT_FALSE(o.ok()) << "require '" << mod << "' returned " << o.values.dump();
  }
}

TEST_F(Sandbox, DeniesDofile) {
  fs::path file = dir.write("outside.lua", "return 42");
  step_error e = error_of("return dofile(...)", {file.string()});
  EXPECT_EQ(e.kind, error_kind::sandbox);
  EXPECT_THAT(e.message, HasSubstr("'dofile'"));
}

TEST_F(Sandbox, DeniesLoadfile) {
  fs::path file = dir.write("outside.lua", "return 42");
  step_error e = error_of("return loadfile(...)()", {file.string()});
  EXPECT_EQ(e.kind, error_kind::sandbox);
  EXPECT_THAT(e.message, HasSubstr("'loadfile'"));
}

TEST_F(Sandbox, DeniesStringDump) {
  step_error e = error_of("return string.dump(function() return 1 end)");
  EXPECT_THAT(e.message, HasSubstr("dump"));
  // Not through the shared string metatable either.
  e = error_of(R"(return (""):dump(function() return 1 end))");
  EXPECT_THAT(e.message, HasSubstr("dump"));
}

TEST_F(Sandbox, LoadRefusesBytecode) {
  std::string bc = bytecode_returning_42();
  ASSERT_THAT(bc, StartsWith("\x1bLJ"));
  outcome o = run(R"(local bc = ...
local f, err = load(bc)
local g, err2 = loadstring(bc)
return f == nil, g == nil, tostring(err), tostring(err2))", {bc});
  ASSERT_TRUE(o.ok()) << o.error->describe();
  EXPECT_EQ(o.values[0], true) << "load accepted bytecode";
  EXPECT_EQ(o.values[1], true) << "loadstring accepted bytecode";
  EXPECT_NE(o.values[2], "nil");
  EXPECT_NE(o.values[3], "nil");
}

TEST_F(Sandbox, LoadRefusesBinaryMode) {
  step_error e = error_of(R"(return load("return 1", "chunk", "b"))");
  EXPECT_EQ(e.kind, error_kind::sandbox);
  EXPECT_THAT(e.message, HasSubstr("bytecode"));
  std::string bc = bytecode_returning_42();
  e = error_of(R"(return load(..., "chunk", "bt")())", {bc});
  EXPECT_EQ(e.kind, error_kind::sandbox);
}

TEST_F(Sandbox, RefusesBytecodeChunksNamingThem) {
  std::string bc = bytecode_returning_42();
  try {
    sb->load_string(bc, "precompiled.lua");
    lua_pop(sb->state(), 1);
    FAIL() << "loaded bytecode";
  } catch (const rb::error& e) {
    EXPECT_EQ(e.kind(), error_kind::bad_runbook);
    EXPECT_THAT(e.what(), HasSubstr("precompiled.lua"));
    EXPECT_THAT(e.what(), HasSubstr("bytecode"));
  }
}

TEST_F(Sandbox, DeniesGetfenv) {
  step_error e = error_of("return getfenv(1)");
  EXPECT_EQ(e.kind, error_kind::sandbox);
  EXPECT_THAT(e.message, HasSubstr("'getfenv'"));
}

TEST_F(Sandbox, DeniesSetfenv) {
  step_error e = error_of("setfenv(1, {})");
  EXPECT_EQ(e.kind, error_kind::sandbox);
  EXPECT_THAT(e.message, HasSubstr("'setfenv'"));
}

TEST_F(Sandbox, DeniesCollectgarbage) {
  step_error e = error_of(R"(return collectgarbage("count"))");
  EXPECT_EQ(e.kind, error_kind::sandbox);
  EXPECT_THAT(e.message, HasSubstr("'collectgarbage'"));
}

TEST_F(Sandbox, RefusesANewGlobalNamingIt) {
  step_error e = error_of("local x = 1\nanswer = 42");
  EXPECT_EQ(e.kind, error_kind::sandbox);
  EXPECT_THAT(e.message, HasSubstr("'answer'"));
  EXPECT_EQ(e.source, "test.lua");
  EXPECT_EQ(e.line, 2);
}

TEST_F(Sandbox, RefusesAnUndefinedGlobalNamingIt) {
  step_error e = error_of("local x = 1\nreturn udnefined_thing");
  EXPECT_EQ(e.kind, error_kind::sandbox);
  EXPECT_THAT(e.message, HasSubstr("'udnefined_thing'"));
  EXPECT_EQ(e.line, 2);
}

TEST_F(Sandbox, KeepsTheSharedStringMetatableOutOfReach) {
  outcome o = run(R"(getmetatable("").__index.upper = function() return "pwned" end)");
  EXPECT_FALSE(o.ok()) << "reached the string metatable";
  o = run(R"(return ("abc"):upper())");
  ASSERT_TRUE(o.ok()) << o.error->describe();
  EXPECT_EQ(o.values[0], "ABC");
}

TEST_F(Sandbox, KeepsChangesToStringInsideOneEnvironment) {
  outcome a = run(R"(string.upper = function() return "pwned" end
string.extra = "leaked"
return string.upper("abc"))");
  ASSERT_TRUE(a.ok()) << a.error->describe();
  EXPECT_EQ(a.values[0], "pwned");  // the change holds where it was made
  outcome b = run(R"(return string.upper("abc"), ("abc"):upper(), string.extra == nil)");
  ASSERT_TRUE(b.ok()) << b.error->describe();
  EXPECT_EQ(b.values[0], "ABC");
  EXPECT_EQ(b.values[1], "ABC");
  EXPECT_EQ(b.values[2], true);
}

TEST_F(Sandbox, KeepsChangesToOtherLibrariesInsideOneEnvironment) {
  outcome a = run(R"(table.concat = nil; math.floor = nil; os.time = nil; coroutine.wrap = nil; bit.band = nil)");
  ASSERT_TRUE(a.ok()) << a.error->describe();
  outcome b = run(R"(return table.concat({"a", "b"}), math.floor(2.5), type(os.time()),
  coroutine.wrap(function() return 1 end)(), bit.band(6, 3))");
  ASSERT_TRUE(b.ok()) << b.error->describe();
  EXPECT_EQ(b.values, json::parse(R"(["ab", 2, "number", 1, 2])"));
}

// ---- require -------------------------------------------------------------------------------

/// A sandbox whose `require` sees only dir/lib.
class SandboxRequire : public ::testing::Test {
 protected:
  rb::testing::temp_dir dir{"rb-require"};
  std::unique_ptr<rb::lua::sandbox> sb;

  void SetUp() override {
    dir.write("lib/helpers.lua", "local M = {}\nfunction M.double(x) return 2 * x end\nreturn M\n");
    dir.write("lib/ops/util.lua", "return { name = 'ops.util' }\n");
    dir.write("outside.lua", "return 'escaped'\n");
    sb = std::make_unique<rb::lua::sandbox>(rb::lua::sandbox_options{.module_path = {dir.path() / "lib"}});
    rb::lua::open_all(*sb);
  }
  outcome run(std::string_view code, const std::vector<std::string>& args = {}) { return ::run(*sb, code, args); }
};

TEST_F(SandboxRequire, LoadsModulesFromTheModulePath) {
  outcome o = run(R"(local h = require "helpers"
return h.double(21), require("ops.util").name, require("helpers") == h)");
  ASSERT_TRUE(o.ok()) << o.error->describe();
  EXPECT_EQ(o.values, json::parse(R"([42, "ops.util", true])"));
}

TEST_F(SandboxRequire, RefusesModulesOutsideTheModulePath) {
  std::string absolute = (dir.path() / "outside").string();
  for (std::string name : {std::string("outside"), std::string("../outside"), absolute, std::string("lib/../outside")}) {
    outcome o = run("return require(...)", {name});
    EXPECT_FALSE(o.ok()) << "require '" << name << "' returned " << o.values.dump();
  }
}

TEST_F(SandboxRequire, RefusesNamesWithDotDot) {
  for (std::string name : {"..outside", "ops..util", "..", ".helpers"}) {
    outcome o = run("return require(...)", {name});
    ASSERT_FALSE(o.ok()) << "require '" << name << "' returned " << o.values.dump();
    EXPECT_THAT(o.error->message, HasSubstr("'" + name + "' is not a module name"));
  }
}

TEST_F(SandboxRequire, RunsModulesInTheSandboxToo) {
  dir.write("lib/sneaky.lua", "return io.open('/etc/passwd')\n");
  outcome o = run(R"(return require "sneaky")");
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error->kind, error_kind::sandbox);
  EXPECT_THAT(o.error->message, HasSubstr("'io'"));
}

// ---- what stays allowed ----------------------------------------------------------------

TEST_F(Sandbox, AllowsStringTableAndMath) {
  outcome o = run(R"(local t = {3, 1, 2}
table.sort(t)
return string.format("%s-%03d", "batch", 7), table.concat(t, ","), math.max(3, 9), math.floor(2.7),
  ("a,b"):gsub(",", ";"), ("Users"):lower(), #string.rep("ab", 3))");
  ASSERT_TRUE(o.ok()) << o.error->describe();
  EXPECT_EQ(o.values, json::parse(R"(["batch-007", "1,2,3", 9, 2, "a;b", "users", 6])"));
}

TEST_F(Sandbox, AllowsTimeAndDateFromOs) {
  outcome o = run(R"(local now = os.time()
return now > 1600000000, os.date("!%Y-%m-%d", 0), os.difftime(now + 5, now), type(os.clock()))");
  ASSERT_TRUE(o.ok()) << o.error->describe();
  EXPECT_EQ(o.values, json::parse(R"([true, "1970-01-01", 5, "number"])"));
}

TEST_F(Sandbox, AllowsCoroutinesAndBitOperations) {
  outcome o = run(R"(local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i * 10) end end)
return gen(), gen(), bit.band(12, 10), bit.bor(1, 4), bit.lshift(1, 4))");
  ASSERT_TRUE(o.ok()) << o.error->describe();
  EXPECT_EQ(o.values, json::parse("[10, 20, 8, 5, 16]"));
}

TEST_F(Sandbox, AllowsPcallToCatchErrors) {
  outcome o = run(R"(local ok, err = pcall(error, "inner", 0)
local ok2, err2 = pcall(error, { kind = "custom" })
return ok, err, ok2, err2.kind)");
  ASSERT_TRUE(o.ok()) << o.error->describe();
  EXPECT_EQ(o.values, json::parse(R"([false, "inner", false, "custom"])"));
}

TEST_F(Sandbox, AllowsLoadingSourceText) {
  outcome o = run(R"(local f = load("return 1 + 2")
local g = loadstring("return ...")
local env = {}
load("x = 5", "setter", "t", env)()
return f(), g("passed"), env.x)");
  ASSERT_TRUE(o.ok()) << o.error->describe();
  EXPECT_EQ(o.values, json::parse(R"([3, "passed", 5])"));
}

TEST_F(Sandbox, SandboxesChunksMadeByLoad) {
  step_error e = error_of(R"(return load("return io")())");
  EXPECT_EQ(e.kind, error_kind::sandbox);
  EXPECT_THAT(e.message, HasSubstr("'io'"));
  e = error_of(R"(load("leaked = true")())");
  EXPECT_EQ(e.kind, error_kind::sandbox);
  EXPECT_THAT(e.message, HasSubstr("'leaked'"));
}

TEST_F(Sandbox, ReportsWhereCodeFailed) {
  step_error e = error_of("local x = 1\nerror('boom')");
  EXPECT_EQ(e.message, "boom");
  EXPECT_EQ(e.source, "test.lua");
  EXPECT_EQ(e.line, 2);
  EXPECT_THAT(e.traceback, HasSubstr("test.lua:2"));
}

// ---- limits ------------------------------------------------------------------------------

TEST(SandboxLimits, StopsAnInfiniteLoopAtItsDeadline) {
  child_report r = in_child([] {
    auto sb = rb::lua::make_sandbox({});
    std::vector<std::string> lines = describe(::run(*sb, "while true do end", {}, 200ms));
    for (auto& l : describe(::run(*sb, "return 1 + 1"))) lines.push_back(l);
    return lines;
  }, 10s);
  ASSERT_TRUE(r.finished) << "the loop was still running 10s after its 200ms deadline";
  ASSERT_EQ(r.lines.size(), 4u);
  EXPECT_EQ(r.lines[0], "timeout");
  EXPECT_THAT(r.lines[1], HasSubstr("time limit"));
  EXPECT_GE(r.elapsed, 200ms);
  EXPECT_LT(r.elapsed, 5s);
  EXPECT_EQ(r.lines[2], "ok") << "the sandbox is unusable after a timeout";
  EXPECT_EQ(r.lines[3], "[2]");
}

TEST(SandboxLimits, StopsAnInfiniteLoopThatPcallKeepsCatching) {
  child_report r = in_child([] {
    auto sb = rb::lua::make_sandbox({});
    return describe(::run(*sb, "while true do pcall(function() while true do end end) end", {}, 200ms));
  }, 10s);
  ASSERT_TRUE(r.finished) << "the loop was still running 10s after its 200ms deadline";
  ASSERT_FALSE(r.lines.empty());
  EXPECT_EQ(r.lines[0], "timeout");
  EXPECT_LT(r.elapsed, 5s);
}

TEST(SandboxLimits, StopsAnInfiniteLoopInsideACoroutine) {
  child_report r = in_child([] {
    auto sb = rb::lua::make_sandbox({});
    return describe(::run(*sb, "coroutine.wrap(function() while true do end end)()", {}, 200ms));
  }, 10s);
  ASSERT_TRUE(r.finished) << "the loop was still running 10s after its 200ms deadline";
  ASSERT_FALSE(r.lines.empty());
  EXPECT_EQ(r.lines[0], "timeout");
  EXPECT_LT(r.elapsed, 5s);
}

/// Runs `code` in a sandbox limited to 32 MiB, then a small call; reports both and the peak RSS.
std::vector<std::string> under_32_mib(const char* code) {
  cap_child_memory();
  rb::lua::sandbox sb(rb::lua::sandbox_options{.memory_limit = std::size_t{32} << 20, .module_path = {}});
  rb::lua::open_all(sb);
  std::vector<std::string> lines = describe(::run(sb, code, {}, 20s));
  lines.push_back(std::to_string(peak_rss_mib()));
  for (auto& l : describe(::run(sb, "local t = {} for i = 1, 1000 do t[i] = tostring(i) end return #t"))) lines.push_back(l);
  return lines;
}

TEST(SandboxLimits, StopsUnboundedAllocationAtTheMemoryLimit) {
  child_report r = in_child([] {
    return under_32_mib(R"(local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1024) .. i end)");
  }, 60s);
  ASSERT_TRUE(r.finished);
  ASSERT_EQ(r.lines.size(), 5u) << (r.lines.empty() ? "" : r.lines[0]);
  EXPECT_EQ(r.lines[0], "memory");
  EXPECT_THAT(r.lines[1], HasSubstr("32 MiB"));
  EXPECT_LT(std::stol(r.lines[2]), 512) << "peak resident MiB";
  EXPECT_EQ(r.lines[3], "ok") << "the sandbox is unusable after a memory error: " << r.lines[4];
  EXPECT_EQ(r.lines[4], "[1000]");
}

TEST(SandboxLimits, StopsOneHugeStringAtTheMemoryLimit) {
  child_report r = in_child([] { return under_32_mib(R"(local s = string.rep("x", 2^30) return #s)"); }, 60s);
  ASSERT_TRUE(r.finished);
  ASSERT_EQ(r.lines.size(), 5u) << (r.lines.empty() ? "" : r.lines[0]);
  EXPECT_EQ(r.lines[0], "memory") << r.lines[1];
  EXPECT_LT(std::stol(r.lines[2]), 512) << "peak resident MiB";
  EXPECT_EQ(r.lines[3], "ok") << "the sandbox is unusable after a memory error: " << r.lines[4];
}

TEST(SandboxLimits, MemoryErrorsCannotBeSwallowedByPcall) {
  child_report r = in_child([] {
    return under_32_mib(R"(local ok = pcall(function()
  local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1024) .. i end
end)
return ok)");
  }, 60s);
  ASSERT_TRUE(r.finished);
  ASSERT_EQ(r.lines.size(), 5u) << (r.lines.empty() ? "" : r.lines[0]);
  EXPECT_EQ(r.lines[0], "memory") << r.lines[1];
  EXPECT_EQ(r.lines[3], "ok") << "the sandbox is unusable after a memory error: " << r.lines[4];
}

// ---- errors across the boundary --------------------------------------------------------

TEST_F(Sandbox, CheckFailuresReachPcallAsErrorTables) {
  outcome o = run(R"(local ok, e = pcall(function()
  check(false, "disk almost full")
end)
return ok, e.kind, e.class, e.message, e.line, tostring(e))");
  ASSERT_TRUE(o.ok()) << o.error->describe();
  EXPECT_EQ(o.values[0], false);
  EXPECT_EQ(o.values[1], "check_failed");
  EXPECT_EQ(o.values[2], "check");
  EXPECT_EQ(o.values[3], "disk almost full");
  EXPECT_EQ(o.values[4], 2);
  EXPECT_THAT(o.values[5].get<std::string>(), HasSubstr("disk almost full"));
}

TEST_F(Sandbox, UsageErrorsFromBindingsReachPcallWithKindAndMessage) {
  outcome o = run(R"(local ok, e = pcall(audit.note, "x")
return ok, e.kind, e.message)");
  ASSERT_TRUE(o.ok()) << o.error->describe();
  EXPECT_EQ(o.values[0], false);
  EXPECT_EQ(o.values[1], "usage");
  EXPECT_THAT(o.values[2].get<std::string>(), HasSubstr("audit.note"));
  EXPECT_THAT(o.values[2].get<std::string>(), Not(HasSubstr("C++ exception")));
}

TEST_F(SandboxRequire, EngineExceptionsReachPcallAsErrorTables) {
  // Loading a module throws rb::error from C++; the trampoline must convert it.
  dir.write("lib/broken.lua", "local x = 1\nreturn {{\n");
  outcome o = run(R"(local ok, e = pcall(require, "broken")
return ok, e.kind, e.message)");
  ASSERT_TRUE(o.ok()) << o.error->describe();
  EXPECT_EQ(o.values[0], false);
  EXPECT_EQ(o.values[1], "bad_runbook");
  EXPECT_THAT(o.values[2].get<std::string>(), HasSubstr("broken.lua"));
  EXPECT_THAT(o.values[2].get<std::string>(), Not(HasSubstr("C++ exception")));
}

TEST_F(SandboxRequire, ReportsABrokenModuleAgainOnTheNextRequire) {
  // A step that requires a broken module fails the same way on its retry, not with a
  // different story such as a require loop.
  dir.write("lib/broken.lua", "local x = 1\nreturn {{\n");
  dir.write("lib/failing.lua", "error('no config for this host')\n");
  for (const char* name : {"broken", "failing"}) {
    outcome o = run(R"(local name = ...
local ok1, e1 = pcall(require, name)
local ok2, e2 = pcall(require, name)
return ok1, ok2, tostring(e1), tostring(e2))", {name});
    ASSERT_TRUE(o.ok()) << o.error->describe();
    EXPECT_EQ(o.values[0], false) << name;
    EXPECT_EQ(o.values[1], false) << name;
    EXPECT_THAT(o.values[2].get<std::string>(), HasSubstr(std::string(name) + ".lua:"));
    EXPECT_THAT(o.values[3].get<std::string>(), HasSubstr(std::string(name) + ".lua:")) << "second require";
    EXPECT_THAT(o.values[3].get<std::string>(), Not(HasSubstr("loop"))) << name;
  }
}

}  // namespace
