// `runbook new NAME --kind KIND` writes a skeleton that checks, runs in --sandbox and passes
// luacheck as written; `runbook init` sets a repository up for editors and luacheck, keeping
// what is there.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/shell/process.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

/// luacheck over `paths` in `dir` (with the .luacheckrc found there).
rb::shell::process_result luacheck(const fs::path& dir, const std::vector<std::string>& paths) {
  rb::shell::process_options o;
  o.argv = {"luacheck", "--no-color", "--codes"};
  o.argv.insert(o.argv.end(), paths.begin(), paths.end());
  o.cwd = dir;
  o.timeout = std::chrono::seconds(60);
  return rb::shell::run(o);
}

class NewRunbook : public ::testing::TestWithParam<std::string> {
 protected:
  rb::testing::temp_dir dir{"rb-new"};
  rb::testing::cli_sandbox cli{dir.path()};
};

TEST_P(NewRunbook, ChecksRunsInTheSandboxAndPassesLuacheckAsWritten) {
  const std::string kind = GetParam();
  auto init = cli.run({"init"});
  ASSERT_EQ(init.exit_code, 0) << init.out << init.err;

  auto made = cli.run({"new", "team.task", "--kind", kind});
  ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
  EXPECT_THAT(made.out, HasSubstr("wrote  runbooks/team/task.lua (" + kind + ")"));
  ASSERT_TRUE(fs::is_regular_file(dir.path() / "runbooks/team/task.lua"));
  ASSERT_TRUE(fs::is_regular_file(dir.path() / "runbooks/team/task.sql"));
  std::string lua = rb::testing::read_file(dir.path() / "runbooks/team/task.lua");
  EXPECT_THAT(lua, HasSubstr("runbook \"team.task\" {"));
  EXPECT_THAT(lua, HasSubstr("fixture = \"task.sql\""));
  EXPECT_EQ(lua.find("{{"), std::string::npos) << "a placeholder was left in:\n" << lua;

  auto check = cli.run({"check", "runbooks/team/task.lua"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_THAT(check.out, HasSubstr("ok     team.task"));

  auto run = cli.run({"run", "team.task", "--sandbox", "--yes"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  auto end = cli.events("run.end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]["status"], "succeeded");
  if (kind == "incident") {
    // --yes answered the fix's confirm: it ran and requeued the one stuck job.
    auto fix = cli.events("step.end", "requeue stuck jobs");
    ASSERT_EQ(fix.size(), 1u);
    EXPECT_EQ(fix[0]["status"], "succeeded") << fix[0].dump();
  }
  if (kind == "monitor") {
    // It sampled the fixture's queue until `lasting` ran out.
    auto watch = cli.events("watch.end");
    ASSERT_EQ(watch.size(), 1u);
    EXPECT_EQ(watch[0]["end"], "completed") << watch[0].dump();
    EXPECT_GE(watch[0]["samples"].get<int>(), 2) << watch[0].dump();
  }

  auto lint = luacheck(dir.path(), {"runbooks"});
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;
}

INSTANTIATE_TEST_SUITE_P(Kinds, NewRunbook, ::testing::Values("migration", "maintenance", "incident", "monitor"),
                         [](const auto& info) { return info.param; });

TEST(NewRunbookCli, IncidentDeclinedWithoutYesKeepsTheDiagnosis) {
  rb::testing::temp_dir dir{"rb-new"};
  rb::testing::cli_sandbox cli{dir.path()};
  ASSERT_EQ(cli.run({"new", "ops.stuck", "--kind", "incident"}).exit_code, 0);
  auto run = cli.run({"run", "ops.stuck", "--sandbox"});  // no terminal, no --yes: the fix is declined
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  auto fix = cli.events("step.end", "requeue stuck jobs");
  ASSERT_EQ(fix.size(), 1u);
  EXPECT_EQ(fix[0]["status"], "skipped");
  EXPECT_EQ(cli.events("step.end", "queue now").at(0)["status"], "succeeded");
}

TEST(NewRunbookCli, DefaultsToAMigrationAndNeverOverwrites) {
  rb::testing::temp_dir dir{"rb-new"};
  rb::testing::cli_sandbox cli{dir.path()};
  auto first = cli.run({"new", "db.add_status"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("wrote  runbooks/db/add_status.lua (migration)"));
  dir.write("runbooks/db/add_status.lua", "-- mine\n");

  auto again = cli.run({"new", "db.add_status", "--kind", "incident"});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err, HasSubstr("'runbooks/db/add_status.lua' exists; runbook new never overwrites"));
  EXPECT_EQ(rb::testing::read_file(dir.path() / "runbooks/db/add_status.lua"), "-- mine\n");

  // A fixture of that name alone is enough to refuse: nothing is written.
  dir.write("runbooks/db/other.sql", "-- mine\n");
  EXPECT_EQ(cli.run({"new", "db.other"}).exit_code, 2);
  EXPECT_FALSE(fs::exists(dir.path() / "runbooks/db/other.lua"));
}

TEST(NewRunbookCli, RefusesUnknownKindsAndNamesThatAreNotNames) {
  rb::testing::temp_dir dir{"rb-new"};
  rb::testing::cli_sandbox cli{dir.path()};
  auto kind = cli.run({"new", "a.b", "--kind", "migrate"});
  EXPECT_EQ(kind.exit_code, 2);
  EXPECT_THAT(kind.err, HasSubstr("did you mean 'migration'"));
  for (const char* bad : {"../escape", "a..b", "a/b", "lib.x", "a.b c"}) {
    auto r = cli.run({"new", bad});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_THAT(r.err, HasSubstr("is not a runbook name")) << bad;
  }
  EXPECT_FALSE(fs::exists(dir.path() / "runbooks"));
}

TEST(InitCli, WritesRunbooksLuarcAndLuacheckrc) {
  rb::testing::temp_dir dir{"rb-init"};
  rb::testing::cli_sandbox cli{dir.path()};
  auto r = cli.run({"init", "repo"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("wrote  repo/runbooks/\n"));
  EXPECT_THAT(r.out, HasSubstr("wrote  repo/.luarc.json\n"));
  EXPECT_THAT(r.out, HasSubstr("wrote  repo/.luacheckrc\n"));
  fs::path repo = dir.path() / "repo";
  EXPECT_TRUE(fs::is_directory(repo / "runbooks"));

  // The language server is pointed at the annotations the binary ships.
  auto luarc = nlohmann::json::parse(rb::testing::read_file(repo / ".luarc.json"));
  EXPECT_EQ(luarc["runtime.version"], "LuaJIT");
  ASSERT_EQ(luarc["workspace.library"].size(), 1u);
  fs::path annotations = luarc["workspace.library"][0].get<std::string>();
  EXPECT_TRUE(annotations.is_absolute());
  EXPECT_TRUE(fs::is_regular_file(annotations / "rb_dsl.lua")) << annotations;
  EXPECT_TRUE(fs::is_regular_file(annotations / "stdlib" / "health.lua")) << annotations;
  EXPECT_EQ(luarc["runtime.builtin"]["io"], "disable");

  // luacheck with the written config knows the runbook globals and catches a stray one.
  EXPECT_THAT(rb::testing::read_file(repo / ".luacheckrc"), HasSubstr("stds.runbook"));
  dir.write("repo/runbooks/ops/typo.lua", "runbook \"ops.typo\" {\n  step \"s\" { run = function(ctx) ctx.db:exec(\"select 1\") end },\n}\n"
                                          "chekc(true)\nos.execute(\"true\")\n");
  auto lint = luacheck(repo, {"runbooks"});
  EXPECT_NE(lint.exit_code, 0);
  EXPECT_THAT(lint.out, HasSubstr("accessing undefined variable 'chekc'"));
  EXPECT_THAT(lint.out, HasSubstr("accessing undefined field 'execute' of global 'os'"));
  EXPECT_THAT(lint.out, Not(HasSubstr("'runbook'")));
}

TEST(InitCli, KeepsExistingFilesAndSaysSo) {
  rb::testing::temp_dir dir{"rb-init"};
  rb::testing::cli_sandbox cli{dir.path()};
  dir.write(".luarc.json", "{\"mine\": true}\n");
  dir.write("runbooks/a/b.lua", "-- mine\n");
  auto r = cli.run({"init"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("kept   runbooks/ (exists)\n"));
  EXPECT_THAT(r.out, HasSubstr("kept   .luarc.json (exists; not overwritten)\n"));
  EXPECT_THAT(r.out, HasSubstr("wrote  .luacheckrc\n"));
  EXPECT_EQ(rb::testing::read_file(dir.path() / ".luarc.json"), "{\"mine\": true}\n");
  EXPECT_EQ(rb::testing::read_file(dir.path() / "runbooks/a/b.lua"), "-- mine\n");

  auto again = cli.run({"init"});
  ASSERT_EQ(again.exit_code, 0);
  EXPECT_THAT(again.out, HasSubstr("kept   .luacheckrc (exists; not overwritten)\n"));
}

}  // namespace
