// `runbook rehearse`: a complete rollback passes, an incomplete one fails with the difference in
// words (in any schema, and in roles, privileges, owners and comments), --forward-only reports
// what the runbook changes, a runbook with no rollback says so, --schemas narrows and
// --schema-only clones the structure only, the clone is audited, and the source is left alone.
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
  EXPECT_EQ(j["passed"], true);
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

TEST_F(Rehearse, AForwardRunAGuardSkippedIsNotAPass) {
  // Outside its window the migration does nothing: an unchanged database proves nothing about
  // its rollback, so the rehearsal must not say it passed.
  dir.write("runbooks/ops/windowed.lua", R"lua(runbook "ops.windowed" {
  fixture = "migrate.sql",
  guard = function(ctx) return false, "outside the maintenance window" end,
  phase "migrate" { transaction = true,
    step "column" {
      run = function(ctx) ctx.db:exec("alter table accounts add column tier text") end,
      rollback = function(ctx) ctx.db:exec("alter table accounts drop column tier") end,
    },
  },
})lua");
  dir.write("runbooks/ops/migrate.sql", k_fixture);
  auto r = cli.run({"rehearse", "ops.windowed", "--sandbox", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.err.find("REHEARSAL PASSED"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("REHEARSAL NOT DONE: a guard skipped the forward run"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("outside the maintenance window"), std::string::npos) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["forward"], "skipped");
  EXPECT_EQ(j["passed"], false) << j.dump();
  EXPECT_EQ(cli.events("rehearsal").at(0)["passed"], false);
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

/// A migration outside "public": three schemas, a role, grants, an owner and a comment. With
/// undo = "none" its rollback handlers leave all of it behind; "all" undoes everything.
constexpr const char* k_wide = R"lua(runbook "ops.wide" {
  fixture = "wide.sql",
  params = { undo = { type = "string", default = "all" } },
  phase "schemas" {
    step "billing" {
      run = function(ctx) ctx.db:script([[
        create schema billing;
        create table billing.invoices (id serial primary key, account_id int references accounts (id), total numeric);
        create schema reporting;
        create view reporting.totals as select account_id, sum(total) from billing.invoices group by 1;
        create schema archive;
        create table archive.old_accounts (like accounts);
      ]]) end,
      rollback = function(ctx)
        if ctx.params.undo == "all" then ctx.db:exec("drop schema archive, reporting, billing cascade") end
      end,
    },
  },
  phase "access" {
    step "grants" {
      run = function(ctx) ctx.db:script([[
        create role auditor;
        grant select on accounts to app_ro;
        alter table accounts owner to app_owner;
        comment on column accounts.name is 'display name';
      ]]) end,
      rollback = function(ctx)
        if ctx.params.undo == "all" then ctx.db:script([[
          comment on column accounts.name is null;
          alter table accounts owner to postgres;
          revoke select on accounts from app_ro;
          drop role auditor;
        ]]) end
      end,
    },
  },
})lua";

constexpr const char* k_wide_fixture = R"(create role app_ro; create role app_owner;
create table accounts (id serial primary key, name text not null);
insert into accounts (name) select 'account ' || g from generate_series(1, 5) g;
)";

/// The same changes with no rollback handler at all.
constexpr const char* k_no_rollback = R"lua(runbook "ops.oneway" {
  fixture = "wide.sql",
  step "schema" { run = function(ctx) ctx.db:script("create schema scratch; create table scratch.t (id int)") end },
  step "rows" { run = function(ctx) ctx.db:exec("insert into accounts (name) values ('new')") end },
})lua";

class RehearseWide : public Rehearse {
 protected:
  void SetUp() override {
    Rehearse::SetUp();
    dir.write("runbooks/ops/wide.lua", k_wide);
    dir.write("runbooks/ops/wide.sql", k_wide_fixture);
    dir.write("runbooks/ops/oneway.lua", k_no_rollback);
    dir.write("runbooks/ops/oneway.sql", k_wide_fixture);
  }
};

TEST_F(RehearseWide, SchemasOutsidePublicAndAccessChangesUndonePass) {
  auto r = cli.run({"rehearse", "ops.wide", "--sandbox"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("REHEARSAL PASSED"), std::string::npos) << r.out;
}

TEST_F(RehearseWide, ASchemaOutsidePublicNotUndoneFailsNamingIt) {
  auto r = cli.run({"rehearse", "ops.wide", "--sandbox", "--param", "undo=none", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("REHEARSAL FAILED"), std::string::npos) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["restored"], false);
  auto has = [&](const std::string& line) {
    for (const auto& d : j["diff"]) if (d == line) return true;
    return false;
  };
  for (const char* line : {"schema billing added", "table billing.invoices added", "schema reporting added",
                           "view reporting.totals added", "schema archive added", "table archive.old_accounts added"})
    EXPECT_TRUE(has(line)) << line << "\n" << j["diff"].dump(1);
}

TEST_F(RehearseWide, AGrantOwnerCommentOrRoleNotUndoneIsCaught) {
  auto r = cli.run({"rehearse", "ops.wide", "--sandbox", "--param", "undo=none", "--schemas", "public"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  for (const char* line : {"role auditor added", "table accounts: SELECT granted to app_ro",
                           "table accounts: owner changed from postgres to app_owner",
                           "column accounts.name: comment added: \"display name\""})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  // narrowed to public: the new schemas are not compared, and the verdict says so
  EXPECT_EQ(r.out.find("schema billing added"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("only schemas public were compared"), std::string::npos) << r.out;
}

TEST_F(RehearseWide, SchemasNarrowsTheComparisonToTheSchemasNamed) {
  // The column is undone, the schema "scratch" is not: with --schemas public it is outside the
  // comparison, without it the rehearsal fails naming it.
  dir.write("runbooks/ops/partial.lua", R"lua(runbook "ops.partial" {
    fixture = "wide.sql",
    step "scratch" {
      run = function(ctx) ctx.db:script("create schema scratch; create table scratch.t (id int)") end,
      rollback = function(ctx) end,
    },
    step "column" {
      run = function(ctx) ctx.db:exec("alter table accounts add column tier text") end,
      rollback = function(ctx) ctx.db:exec("alter table accounts drop column tier") end,
    },
  })lua");
  dir.write("runbooks/ops/partial.sql", k_wide_fixture);
  auto narrowed = cli.run({"rehearse", "ops.partial", "--sandbox", "--schemas", "public"});
  EXPECT_EQ(narrowed.exit_code, 0) << narrowed.out << narrowed.err;
  EXPECT_NE(narrowed.out.find("REHEARSAL PASSED"), std::string::npos) << narrowed.out;
  auto all = cli.run({"rehearse", "ops.partial", "--sandbox"});
  EXPECT_EQ(all.exit_code, 1) << all.out << all.err;
  EXPECT_NE(all.out.find("schema scratch added"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("table scratch.t added"), std::string::npos) << all.out;
}

TEST_F(RehearseWide, ARunbookWithNoRollbackHandlersSaysSoPlainly) {
  auto r = cli.run({"rehearse", "ops.oneway", "--sandbox", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["has_rollback"], false);
  EXPECT_EQ(j["restored"], false);
  EXPECT_NE(r.err.find("REHEARSAL FAILED"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the runbook has no rollback handlers at all"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("schema scratch added"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("table accounts: 1 row more"), std::string::npos) << r.err;
  EXPECT_TRUE(cli.events("rollback.start").empty());
  EXPECT_EQ(cli.events("rehearsal").at(0)["has_rollback"], false);
}

TEST_F(RehearseWide, ForwardOnlyListsEveryChangeInThreeNewSchemas) {
  auto r = cli.run({"rehearse", "ops.wide", "--sandbox", "--forward-only"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out.find(": nothing"), std::string::npos) << r.out;
  for (const char* line : {"schema archive added", "schema billing added", "schema reporting added",
                           "table archive.old_accounts added", "table billing.invoices added", "view reporting.totals added",
                           "role auditor added", "table accounts: SELECT granted to app_ro"})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
}

TEST_F(RehearseWide, TheFixtureLoadIsAuditedAsAShellCommand) {
  auto r = cli.run({"rehearse", "ops.wide", "--sandbox"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto shells = cli.events("shell");
  ASSERT_EQ(shells.size(), 1u);
  const json& rec = shells[0];
  EXPECT_NE(rec["argv"][0].get<std::string>().find("psql"), std::string::npos) << rec.dump();
  EXPECT_NE(rec["argv"].dump().find("wide.sql"), std::string::npos) << rec.dump();
  EXPECT_EQ(rec["exit_code"], 0);
  EXPECT_TRUE(rec.contains("duration_ms"));
  EXPECT_EQ(rec["run"], cli.events("rehearsal").at(0)["rehearsal"]);
}

TEST_F(Rehearse, SchemaOnlyClonesTheStructureWithoutDataAndSaysWhatWasNotCompared) {
  std::string dsn = rb::testing::fresh_database("rehearse_schema_only");
  {
    rb::db::connection c({dsn, "setup", "test"});
    c.script(k_fixture);
  }
  dir.write("runbooks/ops/count.lua", R"lua(runbook "ops.count" {
    step "count" { run = function(ctx) ctx.log("rows on the copy: " .. ctx.db:scalar("select count(*) from accounts")) end },
  })lua");
  auto r = cli.run({"rehearse", "ops.count", "--dsn", dsn, "--schema-only"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("rows on the copy: 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("REHEARSAL PASSED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("row counts, table contents and sequence positions were not compared"), std::string::npos) << r.out;
  // the clone is audited: the roles (pg_dumpall, psql), then pg_dump with --schema-only, pg_restore
  auto shells = cli.events("shell");
  ASSERT_EQ(shells.size(), 4u);
  const char* tools[] = {"pg_dumpall", "psql", "pg_dump", "pg_restore"};
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_NE(shells[i]["argv"][0].get<std::string>().find(tools[i]), std::string::npos) << shells[i].dump();
  EXPECT_NE(shells[2]["argv"].dump().find("--schema-only"), std::string::npos) << shells[2].dump();
  for (const auto& s : shells) {
    EXPECT_EQ(s["exit_code"], 0) << s.dump();
    EXPECT_TRUE(s.contains("duration_ms")) << s.dump();
  }
  // the source still has its rows
  rb::db::connection c({dsn, "check", "test"});
  EXPECT_EQ(c.exec("select count(*) from accounts").rows[0][0].text, "20");
  // and with --sandbox there is nothing to clone structure-only
  EXPECT_EQ(cli.run({"rehearse", "ops.migrate", "--sandbox", "--schema-only"}).exit_code, 2);
}

TEST_F(Rehearse, ACloneKeepsTheSourcesRolesOwnersAndPrivileges) {
  // Roles are the server's: a server of its own (tests/support/pg_fixture.hpp).
  std::string dsn = rb::testing::fresh_database(rb::testing::private_cluster(), "rehearse_roles");
  {
    rb::db::connection c({dsn, "setup", "test"});
    c.script("create role rh_clone_owner; create role rh_clone_reader;");
    c.script(k_fixture);
    c.script("alter table accounts owner to rh_clone_owner; grant select on accounts to rh_clone_reader;");
  }
  dir.write("runbooks/ops/regrant.lua", R"lua(runbook "ops.regrant" {
    step "access" {
      run = function(ctx) ctx.db:script([[
        alter table accounts owner to postgres;
        grant insert on accounts to rh_clone_reader;
      ]]) end,
      rollback = function(ctx) ctx.db:script([[
        revoke insert on accounts from rh_clone_reader;
        alter table accounts owner to rh_clone_owner;
      ]]) end,
    },
  })lua");
  auto forward = cli.run({"rehearse", "ops.regrant", "--dsn", dsn, "--forward-only"});
  EXPECT_EQ(forward.exit_code, 0) << forward.out << forward.err;
  EXPECT_NE(forward.out.find("table accounts: owner changed from rh_clone_owner to postgres"), std::string::npos)
      << forward.out;
  EXPECT_NE(forward.out.find("table accounts: privileges of rh_clone_reader changed from SELECT to INSERT, SELECT"),
            std::string::npos) << forward.out;
  auto back = cli.run({"rehearse", "ops.regrant", "--dsn", dsn});
  EXPECT_EQ(back.exit_code, 0) << back.out << back.err;
  EXPECT_NE(back.out.find("REHEARSAL PASSED"), std::string::npos) << back.out;
}

// The centralized migration's rollback restores everything but migration_log, which keeps the
// history of the attempt as seed 000 asks (START, SUCCESS, then ROLLBACK rows): the rehearsal
// says exactly that, and nothing else.
// migration.centralized keeps its migration_log when it is undone (the seed's history of what
// happened): it declares log_tables, and the rehearsal notes those rows instead of failing.
TEST(RehearseShipped, TheCentralizedMigrationRollsBackEverythingButItsLog) {
  temp_dir dir{"rb-rehearse-shipped"};
  cli_sandbox cli(dir.path());
  auto r = cli.run({"rehearse", "migration.centralized", "--sandbox", "--json"},
                   {{"RUNBOOK_PATH", std::string(RUNBOOK_SOURCE_DIR) + "/runbooks"}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  json j = json::parse(r.out.substr(std::min(r.out.find('{'), r.out.size())), nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out << r.err;
  EXPECT_EQ(j.value("forward", ""), "succeeded") << j.dump();
  EXPECT_EQ(j.value("rollback", ""), "rolled_back") << j.dump();
  EXPECT_EQ(j["diff"], json::array()) << j.dump();
  bool noted = false;
  for (const auto& n : j["notes"])
    noted = noted || n.get<std::string>().rfind("table migration_log: 15 rows more (a log table", 0) == 0;
  EXPECT_TRUE(noted) << j.dump();
}

}  // namespace

namespace {

// Sequences never roll back in PostgreSQL: a rollback that deletes the rows it inserted is
// complete, and the sequence it advanced is a note, not a failure (unless --strict-sequences).
TEST_F(Rehearse, AdvancedSequencesAreNotesUnlessStrict) {
  dir.write("runbooks/ops/insert.lua", R"lua(runbook "ops.insert" {
    fixture = "migrate.sql",
    step "rows" {
      run = function(ctx) ctx.db:exec("insert into accounts (name) select 'new ' || g from generate_series(1, 5) g") end,
      rollback = function(ctx) ctx.db:exec("delete from accounts where name like 'new %'") end,
    },
  })lua");
  dir.write("runbooks/ops/insert.sql", k_fixture);
  auto r = cli.run({"rehearse", "ops.insert", "--sandbox", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  json j = json::parse(r.out.substr(r.out.find('{')));
  EXPECT_EQ(j["restored"], true) << j.dump();
  ASSERT_EQ(j["sequences_advanced"].size(), 1u) << j.dump();
  EXPECT_EQ(j["sequences_advanced"][0], "sequence accounts_id_seq: 20 -> 25");
  bool noted = false;
  for (const auto& n : j["notes"]) noted = noted || n.get<std::string>().find("never rolls a sequence back") != std::string::npos;
  EXPECT_TRUE(noted) << j.dump();

  auto strict = cli.run({"rehearse", "ops.insert", "--sandbox", "--json", "--strict-sequences"});
  EXPECT_NE(strict.exit_code, 0) << strict.out << strict.err;
  json s = json::parse(strict.out.substr(strict.out.find('{')));
  EXPECT_EQ(s["restored"], false);
  ASSERT_EQ(s["diff"].size(), 1u) << s.dump();
  EXPECT_NE(s["diff"][0].get<std::string>().find("last_value changed from 20 to 25"), std::string::npos) << s.dump();
}

}  // namespace
