// Output that fits pipelines and people, through the real binary: --json with the fields
// docs/json.md documents, --color / NO_COLOR, --quiet / --verbose, and progress lines that show
// on a real pseudo-terminal and never in a pipe.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <sstream>

#include "engine/db/connection.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/pty.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using nlohmann::json;
using rb::testing::cli_sandbox;
using rb::testing::run_on_pty;
using rb::testing::temp_dir;

/// The fields docs/json.md marks "always" in the table under the heading that contains `heading`.
std::vector<std::string> documented_fields(const std::string& heading) {
  std::istringstream doc(rb::testing::read_file(std::string(RUNBOOK_SOURCE_DIR) + "/docs/json.md"));
  std::vector<std::string> out;
  bool in = false;
  for (std::string line; std::getline(doc, line);) {
    if (line.rfind("## ", 0) == 0) {
      in = line.find(heading) != std::string::npos;
      continue;
    }
    if (!in || line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream row(line.substr(1));
    for (std::string cell; std::getline(row, cell, '|');) cells.push_back(cell);
    if (cells.size() < 3) continue;
    std::string name = cells[0].substr(cells[0].find('`') + 1);
    name = name.substr(0, name.find('`'));
    if (cells[2].find("always") != std::string::npos) out.push_back(name);
  }
  return out;
}

/// Every field docs/json.md promises under `heading` is in `item`.
void expect_documented(const json& item, const std::string& heading) {
  auto fields = documented_fields(heading);
  ASSERT_FALSE(fields.empty()) << "docs/json.md has no table under " << heading;
  for (const auto& f : fields) EXPECT_TRUE(item.contains(f)) << heading << ": no field '" << f << "' in " << item.dump(2);
}

bool has_sgr(const std::string& text) { return std::regex_search(text, std::regex("\x1b\\[[0-9;]*m")); }

constexpr const char* k_plain = R"lua(runbook "demo.out" {
  title = "Output", tags = { "demo" },
  step "first" { run = function(ctx) ctx.log("hello from first") end },
  step "second" { run = function(ctx) end },
})lua";

constexpr const char* k_fails = R"lua(runbook "demo.fails" {
  escalation = "database",
  step "fine" { run = function(ctx) ctx.log("all good so far") end },
  step "breaks" { run = function() error("boom at step two") end },
})lua";

constexpr const char* k_config = R"lua(return {
  escalation = { database = { levels = { { after = "0m", notify = { "team" } } } } },
})lua";

class Output : public ::testing::Test {
 protected:
  temp_dir dir{"rb-output"};
  cli_sandbox cli{dir.path()};
  std::map<std::string, std::string> colour_ok{{"NO_COLOR", ""}};  // NO_COLOR empty: not set

  void SetUp() override {
    dir.write("runbooks/demo/out.lua", k_plain);
    dir.write("runbooks/demo/fails.lua", k_fails);
    dir.write("runbook.lua", k_config);
  }
};

// ---- --json ----------------------------------------------------------------------------------

TEST_F(Output, ListJsonHasTheDocumentedFields) {
  auto r = cli.run({"list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u) << j.dump(2);
  for (const auto& item : j) expect_documented(item, "`runbook list --json`");
  EXPECT_EQ(j[1]["name"], "demo.out");
  EXPECT_EQ(j[1]["title"], "Output");
  EXPECT_EQ(j[1]["tags"], json::array({"demo"}));
}

TEST_F(Output, ShowJsonIsFormatJsonWithTheDocumentedFields) {
  auto a = cli.run({"show", "demo.out", "--json"});
  auto b = cli.run({"show", "demo.out", "--format", "json"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  json j = json::parse(a.out);
  EXPECT_EQ(j, json::parse(b.out));
  expect_documented(j, "`runbook show NAME --json`");
  ASSERT_EQ(j["phases"].size(), 1u);
  EXPECT_EQ(j["phases"][0]["steps"][1]["name"], "second");
  auto c = cli.run({"show", "demo.out", "--json", "--format", "dot"});
  EXPECT_EQ(c.exit_code, 2);
  EXPECT_NE(c.err.find("--json and --format dot contradict each other"), std::string::npos) << c.err;
}

TEST_F(Output, HistoryAndLogJsonHaveTheDocumentedFields) {
  ASSERT_EQ(cli.run({"run", "demo.out", "--reason", "json test"}).exit_code, 0);
  auto h = cli.run({"history", "--json"});
  ASSERT_EQ(h.exit_code, 0) << h.err;
  json runs = json::parse(h.out);
  ASSERT_EQ(runs.size(), 1u) << h.out;
  expect_documented(runs[0], "`runbook history [NAME] --json`");
  EXPECT_EQ(runs[0]["status"], "succeeded");
  EXPECT_EQ(runs[0]["reason"], "json test");

  auto l = cli.run({"log", runs[0]["run"].get<std::string>(), "--json"});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  std::istringstream lines(l.out);
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    json rec = json::parse(line);  // JSON Lines: each line parses on its own
    expect_documented(rec, "`runbook log RUN --json`");
  }
  EXPECT_GE(n, 6) << l.out;  // run.start, 2 phases' worth of step records, run.end
}

TEST_F(Output, IncidentsJsonHasTheDocumentedFields) {
  auto f = cli.run({"run", "demo.fails"});
  ASSERT_NE(f.exit_code, 0) << f.out;
  auto r = cli.run({"incidents", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_EQ(j.size(), 1u) << r.out;
  expect_documented(j[0], "`runbook incidents --json`");
  EXPECT_EQ(j[0]["runbook"], "demo.fails");
  EXPECT_EQ(j[0]["state"], "open");
}

TEST_F(Output, ScheduleListJsonHasTheDocumentedFields) {
  dir.write("runbooks/ops/nightly.lua", R"lua(runbook "ops.nightly" {
    schedule = { cron = "30 2 * * *", tz = "Europe/Berlin", missed = "once" },
    step "noop" { run = function() end },
  })lua");
  auto r = cli.run({"schedule", "--list", "--json", "--now", "2027-04-01T12:00:00Z", "--next", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_EQ(j.size(), 1u) << r.out;
  expect_documented(j[0], "`runbook schedule --list --json`");
  EXPECT_EQ(j[0]["runbook"], "ops.nightly");
  EXPECT_EQ(j[0]["cron"], "30 2 * * *");
  EXPECT_EQ(j[0]["missed"], "once");
  ASSERT_EQ(j[0]["next"].size(), 2u);
  EXPECT_EQ(j[0]["next"][0]["utc"], "2027-04-02T00:30:00Z");  // 02:30 in Berlin's summer time
  EXPECT_EQ(j[0]["next"][0]["local"], "2027-04-02 02:30 CEST");
  EXPECT_EQ(j[0]["next"][1]["utc"], "2027-04-03T00:30:00Z");
  EXPECT_EQ(cli.run({"schedule", "--once", "--json"}).exit_code, 2);  // --json is for --list
}

// ---- colour ----------------------------------------------------------------------------------

TEST_F(Output, ColorAlwaysPaintsAPipeEvenWithNoColor) {
  auto r = cli.run({"--color=always", "run", "demo.out"}, {{"NO_COLOR", "1"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has_sgr(r.out)) << r.out;
  auto after = cli.run({"run", "demo.out", "--color", "always"}, {{"NO_COLOR", "1"}});  // after the command too
  EXPECT_TRUE(has_sgr(after.out)) << after.out;
}

TEST_F(Output, AutoLeavesAPipePlain) {
  auto r = cli.run({"run", "demo.out"}, colour_ok);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(has_sgr(r.out)) << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;  // nor any other escape sequence
}

TEST_F(Output, AutoColoursATerminal) {
  auto r = run_on_pty(cli, {"run", "demo.out"}, colour_ok);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has_sgr(r.output)) << r.output;
}

TEST_F(Output, NoColorKeepsATerminalPlain) {
  auto r = run_on_pty(cli, {"run", "demo.out"}, {{"NO_COLOR", "1"}});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("succeeded"), std::string::npos) << r.output;
  EXPECT_FALSE(has_sgr(r.output)) << r.output;
}

TEST_F(Output, ColorNeverKeepsATerminalPlain) {
  auto r = run_on_pty(cli, {"run", "demo.out", "--color=never"}, colour_ok);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("succeeded"), std::string::npos) << r.output;
  EXPECT_FALSE(has_sgr(r.output)) << r.output;
}

TEST_F(Output, ColorRefusesAnUnknownWhen) {
  auto r = cli.run({"list", "--color=sometimes"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--color must be auto, always or never, not 'sometimes'"), std::string::npos) << r.err;
  auto help = cli.run({"history", "--help"});
  EXPECT_NE(help.out.find("--color"), std::string::npos) << "every command documents it\n" << help.out;
}

// ---- --quiet / --verbose ----------------------------------------------------------------------

TEST_F(Output, QuietPrintsOnlyTheOutcomeLine) {
  auto normal = cli.run({"run", "demo.out"});
  EXPECT_NE(normal.out.find("hello from first"), std::string::npos) << normal.out;
  auto r = cli.run({"run", "demo.out", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("hello from first"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("first"), std::string::npos) << r.out;
  ASSERT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_EQ(r.out.rfind("run ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(" succeeded in "), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "");
}

TEST_F(Output, QuietStillPrintsTheErrorOfAFailedStep) {
  auto r = cli.run({"run", "demo.fails", "-q"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("breaks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("boom at step two"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("all good so far"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("fine"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" failed in "), std::string::npos) << r.out;
  auto both = cli.run({"run", "demo.out", "--quiet", "--verbose"});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("--quiet and --verbose contradict each other"), std::string::npos) << both.err;
}

class OutputDb : public Output {
 protected:
  std::string dsn = rb::testing::fresh_database("output_cli");
  std::map<std::string, std::string> env{{"RUNBOOK_DSN", dsn}};

  void SetUp() override {
    Output::SetUp();
    dir.write("runbooks/demo/verbose.lua", R"lua(runbook "demo.verbose" {
  step "write" {
    run = function(ctx)
      ctx.db:exec([[create table verbose_t
                      (id int)]])
      ctx.db:exec("insert into verbose_t values ($1)", 7)
      shell.run { "echo", "hello world" }
    end,
    rollback = function(ctx) ctx.db:exec("drop table verbose_t") end,
  },
})lua");
  }
};

TEST_F(OutputDb, VerbosePrintsEachStatementAndCommandAsItRuns) {
  auto normal = cli.run({"run", "demo.verbose"}, env);
  ASSERT_EQ(normal.exit_code, 0) << normal.out << normal.err;
  EXPECT_EQ(normal.out.find("verbose_t"), std::string::npos) << normal.out;
  EXPECT_EQ(normal.out.find("echo"), std::string::npos) << normal.out;
  ASSERT_EQ(cli.run({"rollback", cli.events("run.start").at(0)["run"].get<std::string>(), "-q"}, env).exit_code, 0);

  auto r = cli.run({"run", "demo.verbose", "--verbose"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("sql create table verbose_t (id int) (0 rows, "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sql insert into verbose_t values ($1) (1 row, "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("$ echo 'hello world'"), std::string::npos) << r.out;
  EXPECT_LT(r.out.find("create table"), r.out.find("$ echo")) << "in the order they ran\n" << r.out;

  // rollback takes them too: the handler's statement is shown.
  std::string run_id = cli.events("run.start").back()["run"];
  auto rb = cli.run({"rollback", run_id, "--verbose"}, env);
  ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  EXPECT_NE(rb.out.find("sql drop table verbose_t"), std::string::npos) << rb.out;
}

// ---- progress on a terminal --------------------------------------------------------------------

TEST_F(Output, ACommandShowsItsProgressOnATerminalAndNotInAPipe) {
  dir.write("runbooks/demo/slow.lua", R"lua(runbook "demo.slow" {
  step "nap" { run = function() shell.run { "sleep", "1.2" } end },
})lua");
  auto tty = run_on_pty(cli, {"run", "demo.slow"});
  ASSERT_EQ(tty.exit_code, 0) << tty.output;
  EXPECT_NE(tty.output.find("[1/1] nap … sleep ("), std::string::npos) << tty.output;  // time, on the step's line
  EXPECT_NE(tty.output.find("nap: succeeded"), std::string::npos) << tty.output;
  auto pipe = cli.run({"run", "demo.slow"});
  ASSERT_EQ(pipe.exit_code, 0) << pipe.err;
  EXPECT_EQ(pipe.out.find("sleep"), std::string::npos) << pipe.out;
  EXPECT_EQ(pipe.out.find('\x1b'), std::string::npos) << pipe.out;
  auto quiet = run_on_pty(cli, {"run", "demo.slow", "--quiet"});
  EXPECT_EQ(quiet.output.find("sleep"), std::string::npos) << quiet.output;
}

TEST_F(Output, AProgressLineSaysHowMuchOfItsFileACommandWroteOrRead) {
  dir.write("runbooks/demo/files.lua", R"lua(runbook "demo.files" {
  step "write" { run = function() shell.run { "sh", "-c", "exec 3>big.bin; head -c 3000000 /dev/zero >&3; sleep 0.8" } end },
  step "read" { run = function() shell.run { "sh", "-c", "exec 3<big.bin; head -c 1000000 <&3 >/dev/null; sleep 0.8" } end },
})lua");
  auto tty = run_on_pty(cli, {"run", "demo.files"});
  ASSERT_EQ(tty.exit_code, 0) << tty.output;
  EXPECT_NE(tty.output.find(", 3.0 MB written)"), std::string::npos) << tty.output;
  EXPECT_NE(tty.output.find(", 33% of 3.0 MB read)"), std::string::npos) << tty.output;
}

TEST_F(OutputDb, BackupAndRestoreShowTheirToolsOnATerminalAndNotInAPipe) {
  {
    rb::db::connection c({dsn, "setup", "test"});
    c.exec("create table things (id int primary key, name text)");
    c.exec("insert into things select g, 'thing ' || g from generate_series(1, 2000) g");
  }
  dir.write("runbooks/demo/backup.lua", R"lua(local backup = require "backup"
runbook "demo.backup" {
  params = { dir = { type = "string" } },
  step "dump and restore" {
    confirm = "Replaces the data with the backup",
    run = function(ctx)
      local b = backup.dump(ctx, { dir = ctx.params.dir, name = "progress" })
      backup.restore(ctx, { file = b.file })
    end,
  },
})lua");
  std::string param = "dir=" + (dir.path() / "backups").string();
  auto tty = run_on_pty(cli, {"run", "demo.backup", "--yes", "--param", param}, env);
  ASSERT_EQ(tty.exit_code, 0) << tty.output;
  EXPECT_NE(tty.output.find("dump and restore … pg_dump"), std::string::npos) << tty.output;
  // after the note "backup taken" closed the step's line, on a line of its own
  EXPECT_NE(tty.output.find("pg_restore"), std::string::npos) << tty.output;
  auto pipe = cli.run({"run", "demo.backup", "--yes", "--param", param}, env);
  ASSERT_EQ(pipe.exit_code, 0) << pipe.out << pipe.err;
  EXPECT_EQ(pipe.out.find("pg_dump"), std::string::npos) << pipe.out;
  EXPECT_EQ(pipe.out.find("pg_restore"), std::string::npos) << pipe.out;
}

TEST_F(OutputDb, AWatchShowsTimeLeftAndSamplesOnATerminalAndNotInAPipe) {
  dir.write("runbooks/demo/watch.lua", R"lua(runbook "demo.watch" {
  watch "steady" {
    every = "100ms", lasting = "700ms",
    metrics = { one = [[select 1]] },
    trigger "never" { when = "one > 5", action = "abort" },
  },
})lua");
  auto tty = run_on_pty(cli, {"run", "demo.watch"}, env);
  ASSERT_EQ(tty.exit_code, 0) << tty.output;
  EXPECT_TRUE(std::regex_search(tty.output, std::regex("of 700ms, [0-9.]+m?s left, [0-9]+ samples"))) << tty.output;
  auto pipe = cli.run({"run", "demo.watch"}, env);
  ASSERT_EQ(pipe.exit_code, 0) << pipe.out << pipe.err;
  EXPECT_EQ(pipe.out.find(" left"), std::string::npos) << pipe.out;
  EXPECT_NE(pipe.out.find("one="), std::string::npos) << "a plain line per sample instead\n" << pipe.out;
}

TEST_F(Output, ASandboxShowsItsStartAndFixtureOnATerminalAndNotInAPipe) {
  dir.write("runbooks/demo/seeded.lua", R"lua(runbook "demo.seeded" {
  fixture = "seeded.sql",
  step "count" { run = function(ctx) check(ctx.db:scalar("select count(*) from seeded") == 3, "not seeded") end },
})lua");
  dir.write("runbooks/demo/seeded.sql", "create table seeded (id int); insert into seeded values (1), (2), (3);\n");
  auto tty = run_on_pty(cli, {"run", "demo.seeded", "--sandbox"}, {}, std::chrono::seconds(120));
  ASSERT_EQ(tty.exit_code, 0) << tty.output;
  EXPECT_NE(tty.output.find("initdb"), std::string::npos) << tty.output;
  EXPECT_NE(tty.output.find("pg_ctl"), std::string::npos) << tty.output;
  EXPECT_NE(tty.output.find("psql"), std::string::npos) << "the fixture loading\n" << tty.output;
  auto pipe = cli.run({"run", "demo.seeded", "--sandbox"});
  ASSERT_EQ(pipe.exit_code, 0) << pipe.out << pipe.err;
  EXPECT_EQ(pipe.out.find("initdb"), std::string::npos) << pipe.out;
  EXPECT_EQ(pipe.err.find("initdb"), std::string::npos) << pipe.err;
}

TEST_F(OutputDb, ARehearsalCloneShowsItsToolsOnATerminal) {
  {
    rb::db::connection c({dsn, "setup", "test"});
    c.exec("create table things (id int primary key)");
  }
  dir.write("runbooks/demo/add.lua", R"lua(runbook "demo.add" {
  step "add" {
    run = function(ctx) ctx.db:exec("insert into things values (1)") end,
    rollback = function(ctx) ctx.db:exec("delete from things where id = 1") end,
  },
})lua");
  auto tty = run_on_pty(cli, {"rehearse", "demo.add", "--dsn", dsn}, env, std::chrono::seconds(120));
  ASSERT_EQ(tty.exit_code, 0) << tty.output;
  EXPECT_NE(tty.output.find("pg_dump"), std::string::npos) << tty.output;
  EXPECT_NE(tty.output.find("pg_restore"), std::string::npos) << tty.output;
  EXPECT_NE(tty.output.find("REHEARSAL PASSED"), std::string::npos) << tty.output;
  auto quiet = cli.run({"rehearse", "demo.add", "--dsn", dsn, "--quiet"}, env);
  ASSERT_EQ(quiet.exit_code, 0) << quiet.out << quiet.err;
  EXPECT_EQ(quiet.out.find("[1/1] add"), std::string::npos) << quiet.out;
  EXPECT_EQ(quiet.err.find("cloning"), std::string::npos) << quiet.err;
  EXPECT_NE(quiet.out.find("REHEARSAL PASSED"), std::string::npos) << quiet.out;
}

}  // namespace
