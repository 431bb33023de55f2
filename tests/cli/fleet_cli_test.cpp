// Fleet runs through the CLI: one runbook over four real databases, one of which fails.
#include <gtest/gtest.h>

#include "tests/support/cli.hpp"
#include "tests/support/db_helpers.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

TEST(FleetCli, RunsEachTargetOnceRollsBackOnlyTheFailedOneAndSaysSo) {
  temp_dir dir{"rb-cli-fleet"};
  std::vector<std::string> dsns;
  std::string targets;
  for (int i = 1; i <= 4; ++i) {
    dsns.push_back(rb::testing::fresh_database("fleet_shard_" + std::to_string(i)));
    auto c = rb::testing::connect(dsns.back());
    c->exec("create table accounts (id int primary key, note text)");
    // shard-3 already holds the row the migration inserts: its insert fails
    if (i == 3) c->exec("insert into accounts values (1, 'old')");
    targets += "    ['shard-" + std::to_string(i) + "'] = { dsn = '" + dsns.back() + "' },\n";
  }
  dir.write("runbook.lua", "return {\n  targets = {\n" + targets + "    primary = { dsn = '" + dsns[0] + "' },\n  },\n}\n");
  dir.write("runbooks/ops/fill.lua", R"lua(runbook "ops.fill" {
    step "marker" {
      run = function(ctx) ctx.db:exec("create table fleet_marker (at timestamptz default now())") end,
      rollback = function(ctx) ctx.db:exec("drop table fleet_marker") end,
    },
    step "insert" { run = function(ctx) ctx.db:exec("insert into accounts values (1, 'new')") end },
  })lua");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"run", "ops.fill", "--target", "shard-*", "--parallel", "2"});
  EXPECT_EQ(r.exit_code, 4) << "some succeeded, one did not\n" << r.out << r.err;
  EXPECT_NE(r.out.find("shard-3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rolled_back"), std::string::npos) << r.out;
  auto starts = cli.events("run.start");
  EXPECT_EQ(starts.size(), 4u) << "one run per target, each with its own run id";
  for (int i = 1; i <= 4; ++i) {
    auto c = rb::testing::connect(dsns[i - 1]);
    std::string marker = rb::testing::scalar(*c, "select to_regclass('fleet_marker') is not null");
    std::string note = rb::testing::scalar(*c, "select note from accounts where id = 1");
    if (i == 3) {
      EXPECT_EQ(marker, "f") << "the failed target's completed step was rolled back";
      EXPECT_EQ(note, "old");
    } else {
      EXPECT_EQ(marker, "t") << "shard-" << i;
      EXPECT_EQ(note, "new") << "shard-" << i;
    }
  }
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);

  auto unknown = cli.run({"run", "ops.fill", "--target", "shrd-*"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("no configured target matches 'shrd-*'"), std::string::npos) << unknown.err;
}

}  // namespace
