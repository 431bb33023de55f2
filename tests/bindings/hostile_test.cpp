// Hostile runbooks: nothing a runbook does can crash the engine, hang it past its limits, or
// keep it from recording the outcome. Each test runs in a forked child with a time limit, so
// that a regression fails one test instead of killing or hanging the suite.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bindings/error.hpp"
#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "bindings/sandbox.hpp"
#include "engine/run/stop.hpp"
#include "engine/util/text.hpp"
#include "tests/support/child.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/runbook_test.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;
using steady = std::chrono::steady_clock;

using rb::testing::child_report;
using rb::testing::in_child;

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n') c = ' ';
  return s;
}

/// Runs runbooks from source through the real executor, each in a child process.
class Hostile : public rb::testing::RunbookTest {
 protected:
  /// Runs `source` as runbook "t": reports "status=...", "run.end=N", then one line per
  /// step.end record "step|status|kind|message", then the lines ctx.log wrote.
  child_report run_child(const std::string& source, std::chrono::milliseconds limit = 20s) {
    return in_child(
        [&] {
          std::vector<std::string> lines;
          auto o = run(source);
          lines.push_back("status=" + o.status);
          lines.push_back("run.end=" + std::to_string(records("run.end").size()));
          for (const auto& r : records("step.end")) {
            std::string kind = r.contains("error") ? r["error"].value("kind", "") : "";
            std::string msg = r.contains("error") ? r["error"].value("message", "") : "";
            lines.push_back(r.value("step", "") + "|" + r.value("status", "") + "|" + kind + "|" + one_line(msg));
          }
          for (const auto& m : logged()) lines.push_back("log:" + one_line(m));
          return lines;
        },
        limit);
  }

  /// Loads `source` as runbook "t" in a child: "loaded" or "error: kind: message".
  child_report load_child(const std::string& source, std::chrono::milliseconds limit = 20s) {
    return in_child(
        [&] {
          auto file = dir.write("runbooks/t.lua", source);
          auto box = rb::lua::make_sandbox({});
          try {
            auto def = rb::lua::load_runbook(*box, file, "t");
            return std::vector<std::string>{"loaded " + std::to_string(def.step_count())};
          } catch (const rb::error& e) {
            return std::vector<std::string>{"error: " + std::string(rb::kind_name(e.kind())) + ": " + one_line(e.what())};
          }
        },
        limit);
  }
};

// ---- no crash ---------------------------------------------------------------------------

TEST_F(Hostile, ClosingAConnectionInsideItsTransactionFailsTheStep) {
  dsn = rb::testing::fresh_database("hostile_close");
  auto r = run_child(R"lua(runbook "t" {
    step "tx" { on_error = "continue", run = function(ctx)
      local c = db.connect()
      c:transaction(function() c:close(); error("boom in transaction") end)
    end },
    step "sp" { run = function(ctx)
      local c = db.connect()
      c:transaction(function() c:savepoint("a", function() c:close(); error("boom in savepoint") end) end)
    end },
  })lua");
  ASSERT_TRUE(r.finished) << "signal " << r.signal << " after " << r.elapsed.count() << "ms";
  ASSERT_GE(r.lines.size(), 4u) << rb::join(r.lines, "\n");
  EXPECT_EQ(r.lines[0], "status=failed");
  EXPECT_EQ(r.lines[1], "run.end=1");
  EXPECT_THAT(r.lines[2], HasSubstr("boom in transaction"));
  EXPECT_THAT(r.lines[3], HasSubstr("boom in savepoint"));
}

TEST_F(Hostile, RecursionThroughCFunctionsIsAStackOverflowError) {
  auto r = run_child(R"lua(runbook "t" { step "deep" { run = function(ctx)
    local function g(s) return (s:gsub('.', g)) end
    local function cmp(a, b) table.sort({ 3, 2, 1 }, cmp) return a < b end
    local t = setmetatable({}, { __tostring = function(x) return string.format("%s", x) end })
    for _, f in ipairs({ function() g('ab') end, function() cmp(1, 2) end, function() return tostring(t) end }) do
      local ok, err = pcall(f)
      ctx.log(tostring(ok) .. " " .. tostring(err))
    end
    local function h(s) return (s:gsub('.', h)) end
    h('ab')
  end } })lua");
  ASSERT_TRUE(r.finished) << "signal " << r.signal;
  ASSERT_EQ(r.lines.size(), 6u) << rb::join(r.lines, "\n");
  EXPECT_EQ(r.lines[0], "status=failed");
  EXPECT_EQ(r.lines[1], "run.end=1");
  EXPECT_THAT(r.lines[2], HasSubstr("deep|failed|step_failed|stack overflow"));
  for (int i = 3; i < 6; ++i) {
    EXPECT_THAT(r.lines[i], ::testing::StartsWith("log:false ")) << i;
    EXPECT_THAT(r.lines[i], HasSubstr("stack overflow")) << i;
  }
}

TEST_F(Hostile, ADeclarationCannotBeForged) {
  auto r = load_child(R"lua(
    local d = step "real" { run = function() end }
    local tag
    for k in pairs(d) do if type(k) == "userdata" then tag = k end end
    runbook "t" { { [tag or "kind"] = "step" } })lua");
  ASSERT_TRUE(r.finished) << "signal " << r.signal;
  ASSERT_EQ(r.lines.size(), 1u) << rb::join(r.lines, "\n");
  EXPECT_THAT(r.lines[0], HasSubstr("error: bad_runbook: "));
  EXPECT_THAT(r.lines[0], HasSubstr("item 1 is not a phase"));
}

// A runbook reaches only C functions that go through the trampoline (C++ exceptions become Lua
// errors, recursion is bounded) or LuaJIT's own library functions.
TEST_F(Hostile, EveryReachableCFunctionGoesThroughTheTrampoline) {
  auto box = rb::lua::make_sandbox({});
  lua_State* L = box->state();
  // Load every stdlib module, so what they hold is reachable too.
  for (const auto& entry : fs::directory_iterator(rb::lua::stdlib_dir())) {
    if (entry.path().extension() != ".lua") continue;
    std::string code = "pcall(require, '" + entry.path().stem().string() + "')";
    box->load_string(code, "walk.lua");
    ASSERT_FALSE(box->call(0, 0, steady::now() + 10s));
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "rb.builtins");
  int builtins = lua_gettop(L);
  std::set<const void*> seen;
  std::vector<std::string> unwrapped;
  std::size_t c_functions = 0;
  std::function<void(int, const std::string&)> walk = [&](int idx, const std::string& path) {
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    int t = lua_type(L, idx);
    if (t != LUA_TTABLE && t != LUA_TFUNCTION && t != LUA_TUSERDATA) return;
    if (!seen.insert(lua_topointer(L, idx)).second) return;
    if (t == LUA_TFUNCTION) {
      if (lua_iscfunction(L, idx)) {
        ++c_functions;
        lua_pushvalue(L, idx);
        lua_rawget(L, builtins);
        bool builtin = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (!builtin && !rb::lua::is_trampoline(lua_tocfunction(L, idx))) unwrapped.push_back(path);
      }
      for (int i = 1; const char* name = lua_getupvalue(L, idx, i); ++i) {
        walk(-1, path + ".<upvalue " + name + ">");
        lua_pop(L, 1);
      }
      return;  // (its environment is reachable only through getfenv, which runbooks lack)
    }
    if (lua_getmetatable(L, idx)) {
      walk(-1, path + ".<metatable>");
      lua_pop(L, 1);
    }

    if (t == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, idx) != 0) {
        std::string key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : std::string("[") + luaL_typename(L, -2) + "]";
        walk(-2, path + ".<key>");
        walk(-1, path + "." + key);
        lua_pop(L, 1);
      }
    }
  };
  box->push_env();
  walk(-1, "_ENV");
  lua_pop(L, 1);
  lua_pushliteral(L, "");
  walk(-1, "<string>");  // the string metatable
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, LUA_REGISTRYINDEX) != 0) {
    // Everything the engine keeps for runbooks: metatables of its userdata, loaded modules...
    if (lua_type(L, -2) == LUA_TSTRING && std::string(lua_tostring(L, -2)).rfind("rb.", 0) == 0 &&
        std::string(lua_tostring(L, -2)) != "rb.builtins")
      walk(-1, std::string("registry.") + lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  EXPECT_GT(c_functions, 80u);
  EXPECT_TRUE(unwrapped.empty()) << "C functions not going through the trampoline:\n" << rb::join(unwrapped, "\n");
}

// ---- no hang ----------------------------------------------------------------------------

TEST_F(Hostile, CatastrophicPatternsStopAtTheStepTimeLimit) {
  for (std::string call : {"string.find(s, p)", "s:match(p)", "s:gsub(p, '')", "for _ in s:gmatch(p) do end"}) {
    fs::remove(dir.path() / "audit.jsonl");
    auto r = run_child(R"lua(runbook "t" { step "p" { timeout = "500ms", run = function(ctx)
        local s, p = string.rep('a', 60), string.rep('a*', 12) .. 'b'
        )lua" + call + R"lua(
      end } })lua",
                       10s);
    ASSERT_TRUE(r.finished) << call << ": still running after " << r.elapsed.count() << "ms";
    EXPECT_LT(r.elapsed, 2500ms) << call;
    ASSERT_EQ(r.lines.size(), 3u) << rb::join(r.lines, "\n");
    EXPECT_EQ(r.lines[1], "run.end=1");
    EXPECT_THAT(r.lines[2], HasSubstr("p|failed|timeout|")) << call;
  }
}

TEST_F(Hostile, ErrorValuesOfEveryKindEndTheStepWithABoundedMessage) {
  auto r = run_child(R"lua(runbook "t" {
    step "loops" { on_error = "continue", timeout = "30s", run = function()
      error(setmetatable({}, { __index = function() while true do end end }))
    end },
    step "raises" { on_error = "continue", run = function()
      error(setmetatable({}, { __index = function() error("from __index") end }))
    end },
    step "tostring" { on_error = "continue", run = function()
      error(setmetatable({}, { __tostring = function() while true do end end }))
    end },
    step "nil" { on_error = "continue", run = function() error(nil) end },
    step "userdata" { on_error = "continue", run = function(ctx) error(ctx.db) end },
    step "huge" { on_error = "continue", run = function() error(string.rep("x", 1000000)) end },
    step "bytes" { on_error = "continue", run = function() error("bad \255\254 bytes", 0) end },
    step "digits" { on_error = "continue", run = function() error("job:20240101123456: failed", 0) end },
    step "field" { on_error = "continue", run = function() error({ message = string.rep("y", 100000), line = 0/0 }) end },
  })lua",
                     20s);
  ASSERT_TRUE(r.finished) << "still running after " << r.elapsed.count() << "ms, signal " << r.signal;
  EXPECT_LT(r.elapsed, 10s);
  ASSERT_EQ(r.lines.size(), 11u) << rb::join(r.lines, "\n");
  EXPECT_EQ(r.lines[1], "run.end=1");
  EXPECT_EQ(r.lines[2], "loops|failed|step_failed|(error table without a message)");
  EXPECT_EQ(r.lines[3], "raises|failed|step_failed|(error table without a message)");
  EXPECT_EQ(r.lines[4], "tostring|failed|step_failed|(error table without a message)");
  EXPECT_EQ(r.lines[5], "nil|failed|step_failed|(error object is a nil value)");
  EXPECT_EQ(r.lines[6], "userdata|failed|step_failed|(error object is a userdata value)");
  EXPECT_THAT(r.lines[7], HasSubstr("huge|failed|step_failed|xxxx"));
  EXPECT_LT(r.lines[7].size(), 9000u);
  EXPECT_THAT(r.lines[7], HasSubstr(" bytes in all)"));
  EXPECT_EQ(r.lines[8], "bytes|failed|step_failed|bad \xEF\xBF\xBD\xEF\xBF\xBD bytes");
  EXPECT_EQ(r.lines[9], "digits|failed|step_failed|job:20240101123456: failed");
  EXPECT_LT(r.lines[10].size(), 9000u);
}

TEST_F(Hostile, TheEngineErrorMetatableIsLocked) {
  auto r = run_child(R"lua(runbook "t" { step "s" { timeout = "30s", run = function(ctx)
    local ok, err = pcall(check, false, "first")
    local mt = getmetatable(err)
    ctx.log(type(mt) .. " " .. tostring(mt))
    if type(mt) == "table" then mt.__index = function() while true do end end end
    check(false, "second")
  end } })lua");
  ASSERT_TRUE(r.finished) << "still running after " << r.elapsed.count() << "ms";
  EXPECT_LT(r.elapsed, 10s);
  ASSERT_EQ(r.lines.size(), 4u) << rb::join(r.lines, "\n");
  EXPECT_EQ(r.lines[2], "s|failed|check_failed|second");
  EXPECT_EQ(r.lines[3], "log:string locked");
}

TEST_F(Hostile, SpecsWithMetatablesLoadWithoutRunningThem) {
  for (std::string meta : {"{ __index = function() while true do end end }", "{ __index = function() error('no') end }"}) {
    auto r = load_child(R"lua(local m = )lua" + meta + R"lua(
      runbook "t" {
        params = { n = setmetatable({ type = "integer", default = 1 }, m) },
        step "s" (setmetatable({ run = function() end }, m)),
      })lua",
                        10s);
    ASSERT_TRUE(r.finished) << meta << ": still running after " << r.elapsed.count() << "ms";
    ASSERT_EQ(r.lines.size(), 1u);
    EXPECT_EQ(r.lines[0], "loaded 1") << meta;
  }
  auto top = load_child(R"lua(runbook "t" (setmetatable({ step "s" { run = function() end } },
                                                    { __index = function() while true do end end })))lua",
                        10s);
  ASSERT_TRUE(top.finished);
  EXPECT_EQ(top.lines.at(0), "loaded 1");
}

TEST_F(Hostile, TimeoutsMustBeFiniteNonNegativeAndBounded) {
  for (std::string value : {"0/0", "-1", "math.huge", "1e300", "-0/0", "\"99999999999d\""}) {
    auto r = load_child(R"lua(runbook "t" { step "s" { timeout = )lua" + value + R"lua(, run = function() end } })lua", 10s);
    ASSERT_TRUE(r.finished) << value;
    ASSERT_EQ(r.lines.size(), 1u) << value;
    EXPECT_THAT(r.lines[0], HasSubstr("error: bad_runbook: ")) << value;
    EXPECT_THAT(r.lines[0], HasSubstr("is not a duration")) << value;
  }
}

/// A C function that blocks without ever returning to Lua: what no hook can interrupt.
int l_stuck_in_c(lua_State*) {
  std::this_thread::sleep_for(30s);
  return 0;
}

/// Runs `stuck()` in a sandbox whose watchdog grace is 300ms, with `deadline` (none: 0).
child_report stuck_child(std::chrono::milliseconds deadline, bool cancel) {
  return in_child(
      [&] {
        rb::lua::sandbox_options o;
        o.watchdog_grace = 300ms;
        rb::lua::sandbox box(o);
        lua_pushcfunction(box.state(), l_stuck_in_c);
        box.set_global("stuck");
        box.load_string("stuck()", "stuck.lua");
        rb::run::stop_source stop;  // the operator's cancel, outside any run
        box.use_stop(&stop);
        if (cancel) stop.request(SIGTERM);
        std::optional<steady::time_point> until;
        if (deadline > 0ms) until = steady::now() + deadline;
        auto err = box.call(0, 0, until);
        return std::vector<std::string>{"returned " + (err ? err->message : std::string("ok"))};
      },
      20s);
}

TEST_F(Hostile, TheWatchdogEndsTheProcessWhenCodeIsStuckInCPastItsDeadline) {
  auto r = stuck_child(200ms, false);
  ASSERT_TRUE(r.finished) << "still running after " << r.elapsed.count() << "ms";
  EXPECT_TRUE(r.lines.empty()) << rb::join(r.lines, "\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_LT(r.elapsed, 3s);
}

TEST_F(Hostile, TheWatchdogEndsTheProcessWhenCodeStuckInCIgnoresACancel) {
  auto r = stuck_child(0ms, true);
  ASSERT_TRUE(r.finished) << "still running after " << r.elapsed.count() << "ms";
  EXPECT_TRUE(r.lines.empty()) << rb::join(r.lines, "\n");
  EXPECT_EQ(r.exit_code, 130);
  EXPECT_LT(r.elapsed, 3s);
}

// ---- the bounded pattern functions behave as LuaJIT's ---------------------------------------

/// The values `return <expr>` gives in `L`, as text; "error" when it raises.
std::string results_of(lua_State* L, const std::string& code, std::function<int(int)> call) {
  int top = lua_gettop(L);
  if (call(top) != 0) {
    lua_settop(L, top);
    return "error";
  }
  std::string out;
  for (int i = top + 1; i <= lua_gettop(L); ++i) {
    if (i > top + 1) out += ", ";
    switch (lua_type(L, i)) {
      case LUA_TNIL: out += "nil"; break;
      case LUA_TBOOLEAN: out += lua_toboolean(L, i) ? "true" : "false"; break;
      case LUA_TNUMBER:
      case LUA_TSTRING: out += "'" + std::string(lua_tostring(L, i)) + "'"; break;
      default: out += luaL_typename(L, i);
    }
  }
  lua_settop(L, top);
  (void)code;
  return out;
}

TEST_F(Hostile, BoundedPatternFunctionsGiveLuaJITsResults) {
  const char* cases[] = {
      R"~(string.find("hello world", "o w"))~",
      R"~(string.find("hello world", "o", 6))~",
      R"~(string.find("hello world", "l+"))~",
      R"~(string.find("hello", ""))~",
      R"~(string.find("hello", "", 10))~",
      R"~(string.find("hello", "l", -2))~",
      R"~(string.find("a.b", ".", 1, true))~",
      R"~(string.find("abc", "b", 100))~",
      R"~(string.find("a+b", "+", 1, true))~",
      R"~(string.find("abc", "[a-"))~",
      R"~(string.find(12345, 3))~",
      R"~(string.match("key = value", "(%w+)%s*=%s*(%w+)"))~",
      R"~(string.match("  trim  ", "^%s*(.-)%s*$"))~",
      R"~(string.match("2024-01-02", "(%d+)-(%d+)-(%d+)"))~",
      R"~(string.match("hello", "()ll()"))~",
      R"~(string.match("THE (quick) fox", "%((%a+)%)"))~",
      R"~(string.match("f(a(b)c)d", "%b()"))~",
      R"~(string.match("THE (quick) fox", "%f[%a]%a+", 5))~",
      R"~(string.match("hello", "(h)(e)(l)%3"))~",
      R"~(string.match("abc", "^(a)"))~",
      R"~(string.match("x$y", "$y"))~",
      R"~(string.match("x", "x$"))~",
      R"~(string.match("[]]", "[]]"))~",
      R"~(string.match("a]", "[^]]"))~",
      R"~(string.match("a-b", "[a%-]+"))~",
      R"~(string.match("50%", "%d+%%"))~",
      R"~(string.match("a\0b", "%z"))~",
      R"~(string.match("Ab1 _x", "%u%l%d%s%p%x"))~",
      R"~(string.match("\t\n", "%c+"))~",
      R"~(string.match("hello", "%"))~",
      R"~(string.match("hello", "("))~",
      R"~(string.match("hello", ")"))~",
      R"~(string.match("hello", "%1"))~",
      R"~(string.match("hello", "[%a"))~",
      R"~(string.match("hello", "%f"))~",
      R"~(string.match("hello", "%b"))~",
      R"~(select("#", string.match("hello", "h")))~",
      R"~(string.match("aaab", "a-b"))~",
      R"~(string.match("aaab", "a*"))~",
      R"~(string.match("aaab", "a?a?b"))~",
      R"~(string.match("ab", ".-"))~",
      R"~(string.gsub("hello world", "o", "0"))~",
      R"~(string.gsub("hello world", "(%w+)", "<%1>"))~",
      R"~(string.gsub("hello world", "%w+", "%0 %0", 1))~",
      R"~(string.gsub("abc", "", "-"))~",
      R"~(string.gsub("hello", "l", { l = "L" }))~",
      R"~(string.gsub("hello", ".", function(c) if c == "l" then return nil end return c:upper() end))~",
      R"~(string.gsub("abc", "^a", "x"))~",
      R"~(string.gsub("a.b.c", "%.", "%%"))~",
      R"~(string.gsub("x", "x", "%2"))~",
      R"~(string.gsub("hello", "l", true))~",
      R"~(string.gsub("hello", "(l)(l)", function(a, b) return b .. a end))~",
      R"~(string.gsub("abc", ".", { a = 1, b = true }))~",
      R"~(string.gsub("abc", "b", 5))~",
      R"~(string.gsub("abc", "%w", "%a"))~",
      R"~(string.gsub("abc", "()", "%1"))~",
      R"~((function() local t = {} for k, v in string.gmatch("a=1, b=2", "(%w+)=(%w+)") do t[#t + 1] = k .. v end return table.concat(t, ",") end)())~",
      R"~((function() local t = {} for w in ("one two  three"):gmatch("%a+") do t[#t + 1] = w end return table.concat(t, "|") end)())~",
      R"~((function() local n = 0 for _ in ("abc"):gmatch("") do n = n + 1 end return n end)())~",
      R"~((function() local n = 0 for _ in ("a^a"):gmatch("^a") do n = n + 1 end return n end)())~",
      R"~((function() local t = {} for p in ("abc"):gmatch("()") do t[#t + 1] = p end return table.concat(t, ",") end)())~",
      R"~(("x"):rep(3):find("xx", 2))~",
  };
  lua_State* plain = luaL_newstate();
  luaL_openlibs(plain);
  auto box = rb::lua::make_sandbox({});
  for (const char* expr : cases) {
    std::string code = std::string("return ") + expr;
    std::string want = results_of(plain, code, [&](int) {
      if (luaL_loadstring(plain, code.c_str()) != 0) return 1;
      return lua_pcall(plain, 0, LUA_MULTRET, 0);
    });
    lua_State* L = box->state();
    std::string got = results_of(L, code, [&](int) {
      box->load_string(code, "case.lua");
      return box->call(0, LUA_MULTRET, steady::now() + 5s) ? 1 : 0;
    });
    EXPECT_EQ(got, want) << expr;
  }
  lua_close(plain);
}

}  // namespace
