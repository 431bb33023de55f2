// stdlib backup: dump with size and SHA-256 audited, verify by restoring into a throwaway
// PostgreSQL with row counts compared, restore only from a confirmed step.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/db/connection.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

class Backup : public ::testing::Test {
 protected:
  temp_dir dir{"rb-backup"};
  cli_sandbox cli{dir.path()};
  std::string dsn = rb::testing::fresh_database("backup");
  std::map<std::string, std::string> env{{"RUNBOOK_DSN", dsn}};

  void SetUp() override {
    rb::db::connection c({dsn, "setup", "test"});
    c.script("create table messages (id serial primary key, body text);"
             "insert into messages (body) select 'm' || g from generate_series(1, 250) g;"
             "create table reactions (id serial primary key, message_id int references messages(id));"
             "insert into reactions (message_id) select g from generate_series(1, 40) g;");
  }
  std::string scalar(const std::string& sql) {
    rb::db::connection c({dsn, "check", "test"});
    return c.exec(sql).rows.at(0).at(0).text;
  }
};

TEST_F(Backup, DumpVerifyAndRestoreRoundTrip) {
  dir.write("runbooks/ops/backup.lua", R"lua(local backup = require "backup"
  runbook "ops.backup" {
    params = { dir = { type = "string" } },
    step "dump and verify" { run = function(ctx)
      local b = backup.dump(ctx, { dir = ctx.params.dir, name = "before" })
      backup.verify(ctx, b)
      ctx.log(b.counts["public.messages"], #b.sha256, tostring(b.size > 0))
      ctx.db:exec("delete from reactions")
      ctx.db:exec("delete from messages where id > 10")
    end },
  })lua");
  // A second runbook restores it, as an operator would after the damage.
  dir.write("runbooks/ops/restore.lua", R"lua(local backup = require "backup"
  runbook "ops.restore" {
    params = { file = { type = "string" } },
    step "restore" { confirm = "Replaces the tables with the backup",
                     run = function(ctx) backup.restore(ctx, { file = ctx.params.file }) end },
  })lua");
  std::string backups = (dir.path() / "backups").string();
  auto r = cli.run({"run", "ops.backup", "--param", "dir=" + backups, "--yes"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto logs = cli.events("log");
  ASSERT_FALSE(logs.empty()) << r.out << r.err;
  EXPECT_EQ(logs.at(0)["message"], "250 64 true");
  auto notes = cli.events("note");
  ASSERT_GE(notes.size(), 2u);
  EXPECT_EQ(notes[0]["message"], "backup taken");
  EXPECT_EQ(notes[0]["fields"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(notes[1]["message"], "backup verified");
  std::string file = notes[0]["fields"]["file"];
  EXPECT_EQ(scalar("select count(*) from messages"), "10");
  auto restored = cli.run({"run", "ops.restore", "--param", "file=" + file, "--yes"}, env);
  EXPECT_EQ(restored.exit_code, 0) << restored.out << restored.err;
  EXPECT_EQ(scalar("select count(*) from messages"), "250");
  EXPECT_EQ(scalar("select count(*) from reactions"), "40");
  for (auto& s : cli.events("shell")) EXPECT_EQ(s.dump().find("password"), std::string::npos);
}

// pg_dump 15.14 and later write psql meta-commands (\restrict) into plain-format dumps: the
// schema a data-only dump needs is restored with pg_restore, never sent to the server as SQL.
TEST_F(Backup, DataOnlyDumpsOfSomeTablesAndFullDumpsVerify) {
  dir.write("runbooks/ops/data_only.lua", R"lua(local backup = require "backup"
  runbook "ops.data_only" {
    params = { dir = { type = "string" } },
    step "data only" { run = function(ctx)
      -- reactions alone: its foreign key points at a table the dump leaves out
      local b = backup.dump(ctx, { dir = ctx.params.dir, name = "reactions", tables = { "reactions" }, data_only = true })
      local v = backup.verify(ctx, b)
      ctx.log("data-only", tostring(v.ok), b.counts["public.reactions"], tostring(b.data_only))
    end },
    step "full" { run = function(ctx)
      local b = backup.dump(ctx, { dir = ctx.params.dir, name = "full" })
      local v = backup.verify(ctx, b)
      ctx.log("full", tostring(v.ok), b.counts["public.messages"], b.counts["public.reactions"])
    end },
  })lua");
  std::string backups = (dir.path() / "backups").string();
  auto r = cli.run({"run", "ops.data_only", "--param", "dir=" + backups}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto logs = cli.events("log");
  ASSERT_EQ(logs.size(), 2u) << r.out << r.err;
  EXPECT_EQ(logs[0]["message"], "data-only true 40 true");
  EXPECT_EQ(logs[1]["message"], "full true 250 40");
  // the schema file verify made for the data-only dump is gone again
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(backups)) {
    ++files;
    EXPECT_EQ(e.path().string().find(".schema"), std::string::npos) << e.path();
  }
  EXPECT_EQ(files, 2);
}

TEST_F(Backup, VerifyRefusesABackupThatDoesNotRestoreWhatWasCounted) {
  dir.write("runbooks/ops/check.lua", R"lua(local backup = require "backup"
  runbook "ops.check" {
    params = { dir = { type = "string" }, dsn = { type = "string" } },
    step "s" { run = function(ctx)
      local b = backup.dump(ctx, { dir = ctx.params.dir, tables = { "messages" }, target = ctx.params.dsn })
      b.counts["public.messages"] = 999  -- as if rows were lost between counting and dumping
      local ok, e = pcall(backup.verify, ctx, b)
      ctx.log(tostring(ok), e.message)
      local ok2, e2 = pcall(backup.verify, ctx, ctx.params.dir .. "/not-a-dump")
      ctx.log(tostring(ok2), e2.kind)
    end },
  })lua");
  std::string backups = (dir.path() / "backups").string();
  auto r = cli.run({"run", "ops.check", "--param", "dir=" + backups, "--param", "dsn=" + dsn}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto logs = cli.events("log");
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_NE(logs[0]["message"].get<std::string>().find("public.messages: 250 rows in the backup, 999 expected"),
            std::string::npos)
      << logs[0];
  EXPECT_EQ(logs[1]["message"], "false shell");
}

TEST_F(Backup, RestoreRefusesToRunFromAnUnconfirmedStep) {
  dir.write("runbooks/ops/careless.lua", R"lua(local backup = require "backup"
  runbook "ops.careless" { step "s" { run = function(ctx) backup.restore(ctx, { file = "/tmp/x.dump" }) end } })lua");
  auto r = cli.run({"run", "ops.careless"}, env);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("call it from a step with confirm"), std::string::npos) << r.out;
  EXPECT_TRUE(cli.events("shell").empty());
}

}  // namespace
