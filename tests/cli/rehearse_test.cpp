// `runbook rehearse`: a complete rollback passes, an incomplete one fails with the difference in
// words, --forward-only reports what the runbook changes, and a clone leaves its source alone.
#include <gtest/gtest.h>

#include "engine/db/connection.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::testing::cli_sandbox;
using rb::testing::temp_dir;
using nlohmann::json;

/// A migration whose rollback leaves the index behind unless complete = true.
constexpr const char* k_migration = R"lua(runbook "ops.migrate" {
  fixture = "migrate.sql",
  params = { complete = { type = "boolean", default = true } },
  phase "migrate" { transaction = true,
    step "column" {
      run = function(ctx) ctx.db:exec("alter table accounts add column tier text default 'free'") end,
      rollback = function(ctx) ctx.db:exec("alter table accounts drop column tier") end,
    },
    step "index" {
      run = function(ctx) ctx.db:exec("create index idx_accounts_name on accounts (name)") end,
      rollback = function(ctx)
        if ctx.params.complete then ctx.db:exec("drop index idx_accounts_name") end
      end,
    },
  },
  phase "backfill" {
    step "tiers" {
      run = function(ctx) ctx.db:exec("update accounts set tier = 'pro' where id % 2 = 0") end,
      rollback = function(ctx) ctx.db:exec("update accounts set tier = 'free'") end,
    },
  },
})lua";

constexpr const char* k_fixture = R"(create table accounts (id serial primary key, name text not null);
insert into accounts (name) select 'account ' || g from generate_series(1, 20) g;
)";

class Rehearse : public ::testing::Test {
 protected:
  temp_dir dir{"rb-rehearse"};
  cli_sandbox cli{dir.path()};
  void SetUp() override {
    dir.write("runbooks/ops/migrate.lua", k_migration);
    dir.write("runbooks/ops/migrate.sql", k_fixture);
  }
};

TEST_F(Rehearse, ACompleteRollbackPasses) {
  auto r = cli.run({"rehearse", "ops.migrate", "--sandbox", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["restored"], true);
  EXPECT_EQ(j["forward"], "succeeded");
  EXPECT_EQ(j["before"], j["after"]);
  EXPECT_NE(r.err.find("REHEARSAL PASSED"), std::string::npos);
  EXPECT_EQ(cli.events("run.start").at(0)["rehearsal"], true);
  EXPECT_EQ(cli.events("rehearsal").at(0)["restored"], true);
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
}

TEST_F(Rehearse, AnIncompleteRollbackFailsNamingWhatIsLeft) {
  auto r = cli.run({"rehearse", "ops.migrate", "--sandbox", "--param", "complete=false"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("REHEARSAL FAILED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("index idx_accounts_name added"), std::string::npos) << r.out;
  auto rec = cli.events("rehearsal").at(0);
  EXPECT_EQ(rec["restored"], false);
  EXPECT_EQ(rec["diff"], (json{"index idx_accounts_name added"}));
}

TEST_F(Rehearse, ForwardOnlyReportsWhatTheRunbookChanges) {
  auto r = cli.run({"rehearse", "ops.migrate", "--sandbox", "--forward-only"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("column accounts.tier added"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("index idx_accounts_name added"), std::string::npos) << r.out;
  EXPECT_TRUE(cli.events("rollback.start").empty());
}

TEST_F(Rehearse, ACloneOfATargetIsRehearsedAndTheSourceIsLeftAlone) {
  std::string dsn = rb::testing::fresh_database("rehearse_src");
  {
    rb::db::connection c({dsn, "setup", "test"});
    c.script(k_fixture);
  }
  auto r = cli.run({"rehearse", "ops.migrate", "--dsn", dsn});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("REHEARSAL PASSED"), std::string::npos) << r.out;
  rb::db::connection c({dsn, "check", "test"});
  EXPECT_EQ(c.exec("select count(*) from information_schema.columns where table_name = 'accounts' and column_name = 'tier'")
                .rows[0][0].text,
            "0");
}

TEST(RehearseShipped, TheCentralizedMigrationRollsBackExactly) {
  temp_dir dir{"rb-rehearse-shipped"};
  cli_sandbox cli(dir.path());
  auto r = cli.run({"rehearse", "migration.centralized", "--sandbox"},
                   {{"RUNBOOK_PATH", std::string(RUNBOOK_SOURCE_DIR) + "/runbooks"}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("REHEARSAL PASSED"), std::string::npos) << r.out;
}

}  // namespace
