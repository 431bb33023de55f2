// Loading runbook files: a valid runbook becomes the engine's model, and every malformed one
// is refused with an error naming the file, the line and the field or name involved.
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using rb::error_kind;
using rb::run::backoff_kind;
using rb::run::on_error;
using rb::run::param_type;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

/// A runbooks/ directory in a temporary directory, and a sandbox to load from it.
class RunbookFile : public ::testing::Test {
 protected:
  rb::testing::temp_dir dir{"rb-dsl"};
  std::unique_ptr<rb::lua::sandbox> sb = rb::lua::make_sandbox({});

  /// Where the runbook named `name` lives: runbooks/a/b.lua for "a.b".
  fs::path file_for(const std::string& name) const {
    std::string rel = name;
    for (char& c : rel)
      if (c == '.') c = '/';
    return dir.path() / "runbooks" / (rel + ".lua");
  }

  rb::run::runbook_def load(const std::string& name, std::string_view code) {
    dir.write(fs::relative(file_for(name), dir.path()), code);
    return rb::lua::load_runbook(*sb, file_for(name), name);
  }

  /// The message of the error loading `code` as `name` gives; fails the test when it loads or
  /// fails with another kind of error.
  std::string load_error(const std::string& name, std::string_view code) {
    try {
      auto book = load(name, code);
      ADD_FAILURE() << "loaded runbook '" << book.name << "' from:\n" << code;
    } catch (const rb::error& e) {
      EXPECT_EQ(e.kind(), error_kind::bad_runbook) << e.what();
      return e.what();
    }
    return "";
  }

  /// "file:line:" as an error about line `line` of the runbook `name` starts.
  std::string at(const std::string& name, int line) const { return file_for(name).string() + ":" + std::to_string(line) + ":"; }
};

// ---- a valid runbook ---------------------------------------------------------------------

constexpr std::string_view k_full = R"(runbook "ops.demo" {
  title = "Demo migration",
  description = "Shows every field",
  tags = {"migration", "demo"},
  timeout = "15m",
  on_error = "abort",
  params = {
    batch = { type = "integer", default = 1000, doc = "rows per batch" },
    mode = { type = "enum", values = {"fast", "safe"}, default = "safe" },
    table_name = { type = "string", required = true },
    dry = { type = "boolean", default = false },
    pause = { type = "duration", default = "5s" },
    ratio = { type = "number", required = false },
  },
  phase "preflight" {
    description = "checks first",
    step "tables exist" { run = function(ctx) end },
  },
  phase "migrate" {
    timeout = "1h",
    on_error = "continue",
    step "users" {
      run = function(ctx) end,
      verify = function(ctx, result) end,
      rollback = function(ctx) end,
      retry = { attempts = 3, backoff = "fixed", initial = "2s", max = "10s", on = {"40001", "08*"} },
      timeout = "5m",
      confirm = "Deletes migrated users",
      on_error = "rollback",
    },
    step "orders" { run = function(ctx) end, when = function(ctx) return true end, retry = 4 },
  },
}
)";

TEST_F(RunbookFile, ConvertsTheRunbookFields) {
  auto book = load("ops.demo", k_full);
  EXPECT_EQ(book.name, "ops.demo");
  EXPECT_EQ(book.title, "Demo migration");
  EXPECT_EQ(book.description, "Shows every field");
  EXPECT_THAT(book.tags, ElementsAre("migration", "demo"));
  EXPECT_EQ(book.timeout, 15min);
  EXPECT_EQ(book.on_err, on_error::abort);
  EXPECT_EQ(book.file, file_for("ops.demo"));
  EXPECT_EQ(book.where.line, 1);
  EXPECT_EQ(book.file_sha256.size(), 64u);
}

TEST_F(RunbookFile, KeepsPhasesAndStepsInOrder) {
  auto book = load("ops.demo", k_full);
  ASSERT_EQ(book.phases.size(), 2u);
  EXPECT_EQ(book.phases[0].name, "preflight");
  EXPECT_EQ(book.phases[0].description, "checks first");
  EXPECT_EQ(book.phases[0].where.line, 15);
  ASSERT_EQ(book.phases[0].steps.size(), 1u);
  EXPECT_EQ(book.phases[0].steps[0].name, "tables exist");
  EXPECT_EQ(book.phases[0].steps[0].where.line, 17);
  EXPECT_EQ(book.phases[0].steps[0].where.file, file_for("ops.demo").string());

  const auto& migrate = book.phases[1];
  EXPECT_EQ(migrate.name, "migrate");
  EXPECT_EQ(migrate.timeout, 1h);
  EXPECT_EQ(migrate.on_err, on_error::cont);
  ASSERT_EQ(migrate.steps.size(), 2u);
  EXPECT_EQ(migrate.steps[0].name, "users");
  EXPECT_EQ(migrate.steps[0].where.line, 22);
  EXPECT_EQ(migrate.steps[1].name, "orders");
  EXPECT_EQ(migrate.steps[1].where.line, 31);
  EXPECT_EQ(book.step_count(), 3u);
}

TEST_F(RunbookFile, ConvertsStepFields) {
  auto book = load("ops.demo", k_full);
  const auto& users = book.phases[1].steps[0];
  EXPECT_TRUE(users.has_verify);
  EXPECT_TRUE(users.has_rollback);
  EXPECT_FALSE(users.has_when);
  EXPECT_EQ(users.timeout, 5min);
  EXPECT_EQ(users.confirm, "Deletes migrated users");
  EXPECT_EQ(users.on_err, on_error::rollback);
  EXPECT_NE(users.body, nullptr);
  EXPECT_EQ(users.retry.attempts, 3);
  EXPECT_EQ(users.retry.backoff, backoff_kind::fixed);
  EXPECT_EQ(users.retry.initial, 2s);
  EXPECT_EQ(users.retry.max, 10s);
  EXPECT_THAT(users.retry.on, ElementsAre("40001", "08*"));

  const auto& orders = book.phases[1].steps[1];
  EXPECT_FALSE(orders.has_verify);
  EXPECT_FALSE(orders.has_rollback);
  EXPECT_TRUE(orders.has_when);
  EXPECT_EQ(orders.timeout, std::nullopt);
  EXPECT_EQ(orders.confirm, std::nullopt);
  EXPECT_EQ(orders.on_err, std::nullopt);
  EXPECT_EQ(orders.retry.attempts, 4);
  EXPECT_EQ(orders.retry.backoff, backoff_kind::exponential);
  EXPECT_TRUE(orders.retry.on.empty());
}

TEST_F(RunbookFile, ConvertsParamsSortedByName) {
  auto book = load("ops.demo", k_full);
  ASSERT_EQ(book.params.size(), 6u);
  std::vector<std::string> names;
  for (const auto& p : book.params) names.push_back(p.name);
  EXPECT_THAT(names, ElementsAre("batch", "dry", "mode", "pause", "ratio", "table_name"));

  const auto& batch = book.params[0];
  EXPECT_EQ(batch.type, param_type::integer);
  EXPECT_EQ(batch.default_text, "1000");
  EXPECT_EQ(batch.doc, "rows per batch");
  EXPECT_FALSE(batch.required);

  const auto& dry = book.params[1];
  EXPECT_EQ(dry.type, param_type::boolean);
  EXPECT_EQ(dry.default_text, "false");

  const auto& mode = book.params[2];
  EXPECT_EQ(mode.type, param_type::enumeration);
  EXPECT_THAT(mode.values, ElementsAre("fast", "safe"));
  EXPECT_EQ(mode.default_text, "safe");

  const auto& pause = book.params[3];
  EXPECT_EQ(pause.type, param_type::duration);
  EXPECT_EQ(pause.default_text, "5s");

  const auto& ratio = book.params[4];
  EXPECT_EQ(ratio.type, param_type::number);
  EXPECT_EQ(ratio.default_text, std::nullopt);
  EXPECT_FALSE(ratio.required);

  const auto& table_name = book.params[5];
  EXPECT_EQ(table_name.type, param_type::string);
  EXPECT_EQ(table_name.default_text, std::nullopt);
  EXPECT_TRUE(table_name.required);
}

TEST_F(RunbookFile, MakesAParamWithoutDefaultRequired) {
  auto book = load("ops.p", R"(runbook "ops.p" {
  params = { who = { doc = "whom to page" } },
  step "s" { run = function() end },
}
)");
  ASSERT_EQ(book.params.size(), 1u);
  EXPECT_EQ(book.params[0].type, param_type::string);
  EXPECT_TRUE(book.params[0].required);
}

TEST_F(RunbookFile, GathersTopLevelStepsIntoOnePhaseMain) {
  auto book = load("ops.quick", R"(runbook "ops.quick" {
  title = "Quick",
  step "one" { run = function() end },
  step "two" { run = function() end },
  step "three" { run = function() end },
}
)");
  ASSERT_EQ(book.phases.size(), 1u);
  EXPECT_EQ(book.phases[0].name, "main");
  ASSERT_EQ(book.phases[0].steps.size(), 3u);
  EXPECT_EQ(book.phases[0].steps[0].name, "one");
  EXPECT_EQ(book.phases[0].steps[1].name, "two");
  EXPECT_EQ(book.phases[0].steps[2].name, "three");
  EXPECT_EQ(book.phases[0].steps[2].where.line, 5);
}

TEST_F(RunbookFile, TakesTheDeclaredNameWhenNoneIsExpected) {
  auto file = dir.write("anywhere/loose.lua", R"(runbook "whatever.it.says" { step "s" { run = function() end } })");
  auto book = rb::lua::load_runbook(*sb, file, "");
  EXPECT_EQ(book.name, "whatever.it.says");
}

// ---- broken runbooks -------------------------------------------------------------------

TEST_F(RunbookFile, ReportsASyntaxErrorWithItsLine) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  step "one" {
    run = function() return 1 +  end,
  },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 3)));
}

TEST_F(RunbookFile, ReportsAnErrorRaisedByTheTopLevelCode) {
  std::string msg = load_error("ops.bad", R"(local limit = 10
error("refusing to declare: " .. limit)
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 2)));
  EXPECT_THAT(msg, HasSubstr("refusing to declare: 10"));
}

TEST_F(RunbookFile, ReportsAMisspelledConstructorAsAnUndefinedGlobal) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  step "one" { run = function() end },
  stpe "two" { run = function() end },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 3)));
  EXPECT_THAT(msg, HasSubstr("'stpe'"));
}

TEST_F(RunbookFile, ReportsAnUnknownFieldWithASuggestion) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  titel = "Typo",
  step "one" { run = function() end },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 1)));
  EXPECT_THAT(msg, HasSubstr("'titel'"));
  EXPECT_THAT(msg, HasSubstr("did you mean 'title'"));
}

TEST_F(RunbookFile, ReportsAnUnknownStepFieldAtTheStep) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  step "one" { run = function() end },
  step "two" {
    run = function() end,
    rollbak = function() end,
  },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 3)));
  EXPECT_THAT(msg, HasSubstr("step 'two'"));
  EXPECT_THAT(msg, HasSubstr("'rollbak'"));
  EXPECT_THAT(msg, HasSubstr("did you mean 'rollback'"));
}

TEST_F(RunbookFile, ReportsDuplicateStepNamesInAPhase) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  phase "p" {
    step "copy" { run = function() end },
    step "check" { run = function() end },
    step "copy" { run = function() end },
  },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 5)));
  EXPECT_THAT(msg, HasSubstr("'copy'"));
  EXPECT_THAT(msg, HasSubstr("'p'"));
}

TEST_F(RunbookFile, ReportsDuplicateTopLevelStepNames) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  step "copy" { run = function() end },
  step "copy" { run = function() end },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 3)));
  EXPECT_THAT(msg, HasSubstr("'copy'"));
}

TEST_F(RunbookFile, ReportsDuplicatePhaseNames) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  phase "migrate" { step "a" { run = function() end } },
  phase "verify" { step "b" { run = function() end } },
  phase "migrate" { step "c" { run = function() end } },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 4)));
  EXPECT_THAT(msg, HasSubstr("'migrate'"));
}

TEST_F(RunbookFile, ReportsABadDuration) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  step "one" { run = function() end },
  step "slow" {
    run = function() end,
    timeout = "5 minutes",
  },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 3)));
  EXPECT_THAT(msg, HasSubstr("'timeout'"));
  EXPECT_THAT(msg, HasSubstr("5 minutes"));
}

TEST_F(RunbookFile, ReportsAStepWithoutRun) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  step "one" { run = function() end },
  step "empty" { description = "forgot the code" },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 3)));
  EXPECT_THAT(msg, HasSubstr("step 'empty'"));
  EXPECT_THAT(msg, HasSubstr("'run'"));
}

TEST_F(RunbookFile, ReportsARunThatIsNotAFunction) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  step "sql" { run = "DELETE FROM users" },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 2)));
  EXPECT_THAT(msg, HasSubstr("'run' must be a function"));
  EXPECT_THAT(msg, HasSubstr("string"));
}

TEST_F(RunbookFile, ReportsABadOnErrorValue) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  step "one" { run = function() end },
  step "two" { run = function() end, on_error = "ignore" },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 3)));
  EXPECT_THAT(msg, HasSubstr("\"ignore\""));
  EXPECT_THAT(msg, HasSubstr("continue"));
}

TEST_F(RunbookFile, ReadsIdempotentAsABooleanAndRefusesAnythingElse) {
  auto book = load("ops.idem", R"(runbook "ops.idem" {
  step "one" { run = function() end, idempotent = true },
  step "two" { run = function() end },
}
)");
  EXPECT_TRUE(book.phases[0].steps[0].idempotent);
  EXPECT_FALSE(book.phases[0].steps[1].idempotent);
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  step "one" { run = function() end, idempotent = "yes" },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 2)));
  EXPECT_THAT(msg, HasSubstr("idempotent"));
  EXPECT_THAT(msg, HasSubstr("true or false"));
}

TEST_F(RunbookFile, ReportsABadRetryBackoff) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  step "one" {
    run = function() end,
    retry = { attempts = 3, backoff = "linear" },
  },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 2)));
  EXPECT_THAT(msg, HasSubstr("\"linear\""));
  EXPECT_THAT(msg, HasSubstr("exponential"));
}

TEST_F(RunbookFile, ReportsAnEnumParamWithoutValues) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  params = { mode = { type = "enum", default = "fast" } },
  step "one" { run = function() end },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 1)));
  EXPECT_THAT(msg, HasSubstr("param 'mode'"));
  EXPECT_THAT(msg, HasSubstr("values"));
}

TEST_F(RunbookFile, ReportsAnUnknownParamType) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  params = { batch = { type = "int", default = 10 } },
  step "one" { run = function() end },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 1)));
  EXPECT_THAT(msg, HasSubstr("param 'batch'"));
  EXPECT_THAT(msg, HasSubstr("\"int\""));
  EXPECT_THAT(msg, HasSubstr("did you mean 'integer'"));
}

TEST_F(RunbookFile, ReportsADefaultThatDoesNotFitItsType) {
  // Otherwise `runbook check` passes and every run without --param fails, blaming the operator.
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  params = { mode = { type = "enum", values = {"fast", "safe"}, default = "quick" } },
  step "one" { run = function() end },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 1)));
  EXPECT_THAT(msg, HasSubstr("'mode'"));
  EXPECT_THAT(msg, HasSubstr("'quick'"));
  msg = load_error("ops.bad", R"(runbook "ops.bad" {
  params = { batch = { type = "integer", default = "lots" } },
  step "one" { run = function() end },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 1)));
  EXPECT_THAT(msg, HasSubstr("'batch'"));
  EXPECT_THAT(msg, HasSubstr("'lots'"));
}

TEST_F(RunbookFile, ReportsAFileDeclaringNoRunbook) {
  std::string msg = load_error("ops.empty", "local helper = 1\n");
  EXPECT_THAT(msg, StartsWith(file_for("ops.empty").string()));
  EXPECT_THAT(msg, HasSubstr("declares no runbook"));
}

TEST_F(RunbookFile, ReportsTwoRunbooksInOneFile) {
  std::string msg = load_error("ops.two", R"(runbook "ops.two" { step "a" { run = function() end } }
runbook "ops.three" { step "b" { run = function() end } }
)");
  EXPECT_THAT(msg, StartsWith(file_for("ops.two").string()));
  EXPECT_THAT(msg, HasSubstr("2 runbooks"));
}

TEST_F(RunbookFile, ReportsADeclaredNameThatDiffersFromThePath) {
  std::string msg = load_error("ops.demo", R"(-- copied from another runbook
runbook "ops.other" {
  step "a" { run = function() end },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.demo", 2)));
  EXPECT_THAT(msg, HasSubstr("'ops.other'"));
  EXPECT_THAT(msg, HasSubstr("'ops.demo'"));
}

TEST_F(RunbookFile, ReportsAStepAfterPhases) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  phase "p" { step "a" { run = function() end } },
  step "stray" { run = function() end },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 3)));
  EXPECT_THAT(msg, HasSubstr("phases or steps"));
}

TEST_F(RunbookFile, ReportsAPhaseAfterSteps) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  step "a" { run = function() end },
  phase "p" { step "b" { run = function() end } },
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 3)));
  EXPECT_THAT(msg, HasSubstr("phases or steps"));
}

TEST_F(RunbookFile, ReportsARunbookWithoutSteps) {
  std::string msg = load_error("ops.bad", R"(runbook "ops.bad" {
  title = "Nothing to do",
}
)");
  EXPECT_THAT(msg, StartsWith(at("ops.bad", 1)));
  EXPECT_THAT(msg, HasSubstr("no phases, steps or watches"));
}

TEST_F(RunbookFile, RefusesAPrecompiledRunbook) {
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);  // a plain state, only to make real bytecode
  ASSERT_EQ(luaL_dostring(L, R"(return string.dump(function() runbook "ops.bc" {} end))"), 0);
  size_t n = 0;
  const char* s = lua_tolstring(L, -1, &n);
  std::string bytecode(s, n);
  lua_close(L);
  std::string msg = load_error("ops.bc", bytecode);
  EXPECT_THAT(msg, StartsWith(file_for("ops.bc").string()));
  EXPECT_THAT(msg, HasSubstr("bytecode"));
}

TEST_F(RunbookFile, NamesALongFilePathInFull) {
  // Lua shortens chunk names over 60 characters to "...tail"; errors must still name the file.
  std::string name = "operations.database_maintenance.quarterly.reindex_the_largest_tables";
  std::string msg = load_error(name, R"(runbook "operations.database_maintenance.quarterly.reindex_the_largest_tables" {
  step "reindex" { run = function() end, timeout = "soon" },
}
)");
  EXPECT_THAT(msg, StartsWith(at(name, 2)));
  msg = load_error(name, R"(runbook "operations.database_maintenance.quarterly.reindex_the_largest_tables" {
  step "reindex" { run = function() return end end },
}
)");
  EXPECT_THAT(msg, StartsWith(at(name, 2)));
}

TEST_F(RunbookFile, RecordsALongFilePathInFullOnSteps) {
  std::string name = "operations.database_maintenance.quarterly.reindex_the_largest_tables";
  auto book = load(name, R"(runbook "operations.database_maintenance.quarterly.reindex_the_largest_tables" {
  step "reindex" { run = function() end },
}
)");
  EXPECT_EQ(book.phases[0].steps[0].where.file, file_for(name).string());
}

}  // namespace
