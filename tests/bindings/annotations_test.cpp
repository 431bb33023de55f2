// The LuaLS annotations (share/annotations) against what the sandbox really exposes: its
// globals and their fields, ctx and the ctx.db methods from a real ctx, every stdlib module as
// `require` returns it, and the fields each declaration's spec table accepts (from the
// loader's own "known fields" list). A name exposed but not annotated, or annotated but not
// exposed, fails the test by name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "bindings/ctx.hpp"
#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/run/config.hpp"
#include "engine/run/context.hpp"
#include "engine/util/text.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using names = std::set<std::string>;

const fs::path k_annotations = fs::path(RUNBOOK_SOURCE_DIR) / "share" / "annotations";
const fs::path k_stdlib = fs::path(RUNBOOK_SOURCE_DIR) / "stdlib";

/// The standard Lua names the sandbox keeps: LuaLS knows them (the sandbox's `os` subset is
/// annotated, since the full os is not there).
const names k_standard = {"assert",  "error",     "ipairs",    "next",     "pairs",        "pcall",   "xpcall",
                          "select",  "tonumber",  "tostring",  "type",     "unpack",       "rawequal", "rawget",
                          "rawset",  "setmetatable", "getmetatable", "_VERSION", "print", "load", "loadstring",
                          "require", "string",    "table",     "math",     "coroutine",    "bit"};

/// What the annotation files declare (see share/annotations/README.md for the conventions).
struct declared {
  names globals;
  std::map<std::string, names> fields;        ///< of global tables: db -> null, connect ...
  std::map<std::string, names> methods;       ///< Class -> methods (function Class:m)
  std::map<std::string, names> class_fields;  ///< Class -> ---@field names (not [1], [integer])
  std::map<std::string, names> modules;       ///< stdlib module -> members
};

/// "a/b.lua" -> "a.b", "a/init.lua" -> "a".
std::string module_name(const fs::path& rel) {
  fs::path p = rel;
  p.replace_extension();
  if (p.filename() == "init") p = p.parent_path();
  std::string out;
  for (const auto& part : p) out += (out.empty() ? "" : ".") + part.string();
  return out;
}

void read_annotations(const fs::path& file, const std::string& module, declared& d) {
  static const std::regex global_fn(R"(^function (\w+)\()"), global_table(R"(^(\w+) = )"),
      field_fn(R"(^function (\w+)\.(\w+)\()"), field_value(R"(^(\w+)\.(\w+) = )"), method(R"(^function (\w+):(\w+)\()"),
      klass(R"(^---@class (\w+))"), field(R"(^---@field (\w+))"), local_table(R"(^local (\w+) = \{\})");
  std::ifstream in(file);
  std::string line, current_class, module_table;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, klass)) current_class = m[1];
    else if (line.rfind("---", 0) != 0) current_class.clear();
    if (!current_class.empty() && std::regex_search(line, m, field)) d.class_fields[current_class].insert(m[1]);
    if (std::regex_search(line, m, method)) {
      d.methods[m[1]].insert(m[2]);
    } else if (!module.empty()) {
      if (std::regex_search(line, m, local_table) && module_table.empty()) module_table = m[1];
      if ((std::regex_search(line, m, field_fn) || std::regex_search(line, m, field_value)) && m[1] == module_table)
        d.modules[module].insert(m[2]);
    } else if (std::regex_search(line, m, field_fn) || std::regex_search(line, m, field_value)) {
      d.fields[m[1]].insert(m[2]);
    } else if (std::regex_search(line, m, global_fn) || std::regex_search(line, m, global_table)) {
      d.globals.insert(m[1]);
    }
  }
  if (!module.empty() && module_table.empty()) ADD_FAILURE() << file << ": no `local m = {}` module table";
}

declared read_all_annotations() {
  declared d;
  for (const auto& e : fs::recursive_directory_iterator(k_annotations)) {
    if (e.path().extension() != ".lua") continue;
    fs::path rel = e.path().lexically_relative(k_annotations);
    if (*rel.begin() == "stdlib") read_annotations(e.path(), module_name(rel.lexically_relative("stdlib")), d);
    else read_annotations(e.path(), "", d);
  }
  return d;
}

/// The string keys of the table at the top of the stack (raw), which stays.
names keys_of_top(lua_State* L) {
  names out;
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING) out.insert(lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  return out;
}

/// Fails naming every name on one side only.
void expect_same(const names& exposed, const names& annotated, const std::string& what) {
  for (const auto& n : exposed)
    if (!annotated.count(n)) ADD_FAILURE() << what << ": '" << n << "' is exposed but not annotated";
  for (const auto& n : annotated)
    if (!exposed.count(n)) ADD_FAILURE() << what << ": '" << n << "' is annotated but not exposed";
}

class Annotations : public ::testing::Test {
 protected:
  declared d = read_all_annotations();
  std::unique_ptr<rb::lua::sandbox> sb = rb::lua::make_sandbox({});
  lua_State* L = sb->state();
};

TEST(AnnotationFiles, AreLuaTheLanguageServerCanRead) {
  // The language server reads them as Lua: a syntax error would hide everything after it.
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(k_annotations)) {
    if (e.path().extension() != ".lua") continue;
    ++files;
    lua_State* plain = luaL_newstate();
    EXPECT_EQ(luaL_loadfile(plain, e.path().c_str()), 0) << lua_tostring(plain, -1);
    lua_close(plain);
    std::ifstream in(e.path());
    std::string first;
    std::getline(in, first);
    EXPECT_EQ(first.rfind("---@meta", 0), 0u) << e.path() << " does not start with ---@meta";
  }
  EXPECT_GE(files, 10);
}

TEST_F(Annotations, DeclareEveryGlobalOfTheSandboxAndNoOther) {
  sb->push_env();
  names exposed;
  std::map<std::string, names> tables;
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    std::string name = lua_tostring(L, -2);
    if (!k_standard.count(name)) {
      exposed.insert(name);
      if (lua_type(L, -1) == LUA_TTABLE) tables[name] = keys_of_top(L);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  ASSERT_TRUE(exposed.count("runbook") && exposed.count("db")) << "the sandbox was not built as the engine builds it";
  expect_same(exposed, d.globals, "global");
  for (const auto& [name, fields] : tables) expect_same(fields, d.fields[name], "field of global '" + name + "'");
  for (const auto& [name, fields] : d.fields)
    if (!tables.count(name)) ADD_FAILURE() << "'" << name << "' has annotated fields but is not a table of the sandbox";
}

TEST_F(Annotations, DeclareTheMethodsOfConnectionsAndSandboxClusters) {
  luaL_getmetatable(L, "rb.db");
  lua_getfield(L, -1, "__index");
  expect_same(keys_of_top(L), d.methods["RunbookDb"], "ctx.db method");
  lua_pop(L, 2);
  luaL_getmetatable(L, "rb.db.sandbox");
  lua_getfield(L, -1, "__index");
  expect_same(keys_of_top(L), d.methods["RunbookSandboxCluster"], "db.sandbox() method");
  lua_pop(L, 2);
}

TEST_F(Annotations, DeclareEveryFieldOfARealCtx) {
  rb::testing::temp_dir dir{"rb-annotations"};
  rb::audit::log log(dir.path() / "audit.jsonl");
  std::ostringstream shown;
  rb::run::reporter out(shown, rb::run::reporter_options{.tty = false, .color = false, .quiet = true});
  rb::run::runbook_def book;
  book.name = "t.ctx";
  book.title = "a title";  // ctx.title is there when the runbook has one
  rb::run::phase_def phase;
  phase.name = "p";
  rb::run::step_def step;
  step.name = "s";
  rb::run::run_context ctx(log, out, "run-1", book, nlohmann::json::object());
  // A configured target (ctx.target) and a failure (ctx.failure, in rollback handlers): the
  // fields a ctx has only sometimes are all there.
  rb::run::resolved_target primary;
  primary.name = "primary";
  primary.dsn = "dbname=none";
  rb::run::target_session target(primary);
  ctx.set_target(&target);
  ctx.set_failure("p/s", "boom");
  rb::run::step_call call{book, phase, step, 1, std::nullopt, &ctx};
  rb::lua::push_ctx(L, call);
  expect_same(keys_of_top(L), d.class_fields["RunbookContext"], "ctx field");
  lua_getfield(L, -1, "failure");
  expect_same(keys_of_top(L), d.class_fields["RunbookFailure"], "ctx.failure field");
  lua_pop(L, 2);
}

TEST_F(Annotations, DeclareEveryStdlibModuleAsRequireReturnsIt) {
  names exposed_modules;
  for (const auto& e : fs::recursive_directory_iterator(k_stdlib)) {
    if (e.path().extension() != ".lua") continue;
    std::string name = module_name(e.path().lexically_relative(k_stdlib));
    exposed_modules.insert(name);
    sb->load_string("return require(...)", "annotations_test.lua");
    lua_pushstring(L, name.c_str());
    auto err = sb->call(1, 1);
    ASSERT_FALSE(err) << "require '" << name << "': " << err->message;
    ASSERT_EQ(lua_type(L, -1), LUA_TTABLE) << name;
    expect_same(keys_of_top(L), d.modules[name], "stdlib module '" + name + "'");
    lua_pop(L, 1);
  }
  names annotated_modules;
  for (const auto& [name, members] : d.modules) annotated_modules.insert(name);
  expect_same(exposed_modules, annotated_modules, "stdlib module");
}

/// The fields the loader accepts in a spec, from its error for an unknown one.
names known_fields(const std::string& code) {
  rb::testing::temp_dir dir{"rb-annotations"};
  fs::path file = dir.write("runbooks/t/x.lua", code);
  auto sb = rb::lua::make_sandbox({});
  try {
    rb::lua::load_runbook(*sb, file, "t.x");
  } catch (const std::exception& e) {
    std::string msg = e.what();
    auto at = msg.find("known fields: ");
    if (at == std::string::npos) {
      ADD_FAILURE() << "no list of known fields in: " << msg;
      return {};
    }
    std::string list = msg.substr(at + 14);
    list = list.substr(0, list.find('\n'));
    names out;
    for (const auto& f : rb::split(list, ',')) out.insert(std::string(rb::trim(f)));
    return out;
  }
  ADD_FAILURE() << "the unknown field was accepted:\n" << code;
  return {};
}

TEST_F(Annotations, DeclareEveryFieldTheLoaderAcceptsInASpec) {
  const std::string run = "run = function() end";
  const std::string watch_head = "every = \"1s\", lasting = \"1s\", metrics = { a = \"select 1\" }, ";
  const std::vector<std::pair<std::string, std::string>> specs = {
      {"RunbookSpec", "runbook \"t.x\" { zz = 1 }"},
      {"RunbookPhaseSpec", "runbook \"t.x\" { phase \"p\" { zz = 1 } }"},
      {"RunbookStepSpec", "runbook \"t.x\" { step \"s\" { " + run + ", zz = 1 } }"},
      {"RunbookRetry", "runbook \"t.x\" { step \"s\" { " + run + ", retry = { attempts = 2, zz = 1 } } }"},
      {"RunbookConfirm", "runbook \"t.x\" { step \"s\" { " + run + ", confirm = { \"drops\", zz = 1 } } }"},
      {"RunbookParam", "runbook \"t.x\" { params = { p = { type = \"string\", zz = 1 } }, step \"s\" { " + run + " } }"},
      {"RunbookSchedule", "runbook \"t.x\" { schedule = { cron = \"0 3 * * *\", zz = 1 }, step \"s\" { " + run + " } }"},
      {"RunbookChecklistSpec", "runbook \"t.x\" { checklist \"c\" { zz = 1 } }"},
      {"RunbookChecklistItem", "runbook \"t.x\" { checklist \"c\" { { \"x\", manual = \"look\", zz = 1 } } }"},
      {"RunbookWatchSpec", "runbook \"t.x\" { watch \"w\" { zz = 1 } }"},
      {"RunbookTriggerSpec", "runbook \"t.x\" { watch \"w\" { " + watch_head +
                                 "trigger \"t\" { when = \"a > 1\", action = \"abort\", zz = 1 } } }"},
      {"RunbookInvestigate", "runbook \"t.x\" { watch \"w\" { " + watch_head +
                                 "trigger \"t\" { when = \"a > 1\", action = investigate { zz = 1 } } } }"},
      {"RunbookAlert", "runbook \"t.x\" { watch \"w\" { " + watch_head +
                           "trigger \"t\" { when = \"a > 1\", action = alert { zz = 1 } } } }"},
      {"RunbookEscalation", "runbook \"t.x\" { watch \"w\" { " + watch_head +
                                "trigger \"t\" { when = \"a > 1\", action = escalate { zz = 1 } } } }"},
  };
  for (const auto& [klass, code] : specs) {
    names known = known_fields(code);
    // `action` marks a descriptor as a watch action; the engine sets it, runbooks never do.
    if (klass == "RunbookAlert" || klass == "RunbookEscalation") known.erase("action");
    ASSERT_TRUE(d.class_fields.count(klass)) << klass << " is not annotated";
    expect_same(known, d.class_fields[klass], klass);
  }
}

}  // namespace
