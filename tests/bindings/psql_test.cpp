// ctx.db:psql against a real PostgreSQL through the real psql: COPY FROM stdin data, \ir, \set
// and :'var', single_transaction, psql's error line, the step's deadline, the refusal inside a
// transactional phase, secrets kept out of argv and the audit, and the `shell` audit record.
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

#include "engine/db/cluster.hpp"
#include "engine/db/connection.hpp"
#include "engine/util/hash.hpp"
#include "tests/support/db_helpers.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/runbook_test.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb;
using nlohmann::json;
using strings = std::vector<std::string>;

/// A fresh database; SQL files are written beside the runbook (runbooks/).
class Psql : public rb::testing::RunbookTest {
 protected:
  void SetUp() override { dsn = rb::testing::fresh_database("psql_test"); }

  std::string value(const std::string& sql) {
    auto c = rb::testing::connect(dsn);
    return rb::testing::scalar(*c, sql);
  }
  std::filesystem::path sql_file(const std::string& name, const std::string& text) {
    return dir.write("runbooks/" + name, text);
  }
};

TEST_F(Psql, CopyFromStdinDataInTheFileIsLoaded) {
  sql_file("migrations/001_load.sql",
           "create table people (id int primary key, name text);\n"
           "COPY people (id, name) FROM stdin;\n1\tada\n2\tgrace\n3\tedsger\n\\.\n"
           "insert into people values (4, 'barbara');\n");
  auto o = run(R"lua(runbook "t" { step "load" { run = function(ctx)
    local r = ctx.db:psql("migrations/001_load.sql")
    ctx.log(r.file, #r.sha256, type(r.duration))
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(value("select string_agg(name, ',' order by id) from people"), "ada,grace,edsger,barbara");
  EXPECT_EQ(logged(), (strings{"migrations/001_load.sql 64 number"}));
}

TEST_F(Psql, IrIncludesAFileBesideTheScript) {
  sql_file("migrations/main.sql", "create table parts (n int);\n\\ir parts/more.sql\n");
  sql_file("migrations/parts/more.sql", "insert into parts values (7);\n");
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx) ctx.db:psql("migrations/main.sql") end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(value("select sum(n) from parts"), "7");
}

TEST_F(Psql, VarsAreSetAndTheScriptReadsThemQuoted) {
  sql_file("vars.sql", "\\set doubled :n\ncreate table said (who text, what text, n int);\n"
                       "insert into said values (:'who', :'what', :doubled * 2);\n");
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    ctx.db:psql("vars.sql", { vars = { who = "o'brien", what = "a \\ b\nc", n = 21 } })
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(value("select who || '|' || what || '|' || n from said"), "o'brien|a \\ b\nc|42");
}

TEST_F(Psql, SqlTextGoesOnStdinAndItsErrorsNameTheLineInTheText) {
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    local r = ctx.db:psql("create table from_text (x int);\ninsert into from_text values (:'v');\n", { vars = { v = "5" } })
    local ok, e = pcall(ctx.db.psql, ctx.db, "select 1;\nselect * from missing_table;\n")
    ctx.log(tostring(ok), e.class, e.sqlstate, e.message)
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(value("select x from from_text"), "5");
  EXPECT_EQ(logged(), (strings{"false undefined_table 42P01 ctx.db:psql(SQL text) failed: "
                               "psql:<stdin>:2: ERROR:  relation \"missing_table\" does not exist"}));
}

TEST_F(Psql, SingleTransactionAppliesNothingWhenTheScriptFailsAndTheErrorNamesFileAndLine) {
  sql_file("migrations/bad.sql", "create table half (id int);\ninsert into half values (1);\n"
                                 "insert into half values ('not a number');\ninsert into half values (3);\n");
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    ctx.db:psql("migrations/bad.sql", { single_transaction = true })
  end } })lua");
  EXPECT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->kind, error_kind::sql);
  EXPECT_EQ(o.error->sqlstate, "22P02");
  EXPECT_NE(o.error->message.find("psql:migrations/bad.sql:3: ERROR:  invalid input syntax for type integer"),
            std::string::npos)
      << o.error->message;
  EXPECT_EQ(value("select count(*) from pg_class where relname = 'half'"), "0");

  // Without it, what ran before the error stays (ON_ERROR_STOP: nothing after it runs).
  auto o2 = run(R"lua(runbook "t" { step "s" { run = function(ctx) ctx.db:psql("migrations/bad.sql") end } })lua");
  EXPECT_EQ(o2.status, "failed");
  EXPECT_EQ(value("select string_agg(id::text, ',') from half"), "1");
}

TEST_F(Psql, TheStepDeadlineKillsItAndItsStatement) {
  auto t0 = std::chrono::steady_clock::now();
  auto o = run(R"lua(runbook "t" { step "slow" { timeout = "1s", run = function(ctx)
    ctx.db:psql("select pg_sleep(60);")
  end } })lua");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->kind, error_kind::timeout);
  EXPECT_NE(o.error->message.find("ctx.db:psql(SQL text) was killed after"), std::string::npos) << o.error->message;
  EXPECT_EQ(records("shell").at(0)["timed_out"], true);
  // The backend notices psql is gone (client_connection_check_interval) and ends the statement.
  auto admin = rb::testing::connect(dsn);
  std::string left = "?";
  for (int i = 0; i < 100 && left != "0"; ++i) {
    left = rb::testing::scalar(*admin, "select count(*) from pg_stat_activity where datname = current_database() "
                                                 "and application_name = 'runbook psql'");
    if (left != "0") std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(left, "0");
}

TEST_F(Psql, TheStepsLockTimeoutHoldsInPsqlsSession) {
  auto setup = rb::testing::connect(dsn);
  setup->exec("create table busy (id int)");
  auto holder = rb::testing::connect(dsn, "holder");
  holder->begin();
  holder->exec("lock table busy in access exclusive mode");
  auto t0 = std::chrono::steady_clock::now();
  auto o = run(R"lua(runbook "t" { step "wait" { lock_timeout = "300ms", run = function(ctx)
    ctx.db:psql("insert into busy values (1);")
  end } })lua");
  holder->rollback();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
  EXPECT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->sqlstate, "55P03");
  EXPECT_EQ(o.error->klass, "lock_not_available");
  EXPECT_NE(o.error->message.find("psql:<stdin>:1: ERROR:  canceling statement due to lock timeout"), std::string::npos)
      << o.error->message;
}

TEST_F(Psql, IsRefusedInATransactionalPhaseWithTheReason) {
  auto o = run(R"lua(runbook "t" { phase "migrate" { transaction = true,
    step "s" { run = function(ctx) ctx.db:psql("create table never (x int);") end } } })lua");
  EXPECT_EQ(o.status, "rolled_back");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->kind, error_kind::usage);
  EXPECT_NE(o.error->message.find("ctx.db:psql runs in a separate session and cannot join the transaction of "
                                  "phase 'migrate'; put this step in a phase without transaction = true"),
            std::string::npos)
      << o.error->message;
  EXPECT_TRUE(records("shell").empty());
  EXPECT_EQ(value("select count(*) from pg_class where relname = 'never'"), "0");
}

TEST_F(Psql, PasswordAndSecretVarsNeverReachArgvOrTheAudit) {
  const std::string password = "pw-never-shown-8c1f";
  const std::string token = "token-never-shown-4e7a";
  ::setenv("RB_PSQL_TEST_TOKEN", token.c_str(), 1);
  dsn += " password=" + password;  // trust authentication: accepted, never asked for
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    ctx.db:psql("create table tokens (t text);\ninsert into tokens values (:'token');\n",
                { vars = { token = secret "RB_PSQL_TEST_TOKEN", plain = "visible" } })
  end } })lua");
  ::unsetenv("RB_PSQL_TEST_TOKEN");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(value("select t from tokens"), token);
  auto rec = records("shell").at(0);
  EXPECT_EQ(rec["psql"], true);
  EXPECT_EQ(rec["env"]["PGPASSWORD"], "***");
  EXPECT_EQ(rec["vars"]["token"], "***");
  EXPECT_EQ(rec["vars"]["plain"], "visible");
  for (const auto& a : rec["argv"]) {
    EXPECT_EQ(a.get<std::string>().find(password), std::string::npos) << a;
    EXPECT_EQ(a.get<std::string>().find("token"), std::string::npos) << a;
  }
  std::string audit = rb::testing::read_file(log->path());
  EXPECT_EQ(audit.find(password), std::string::npos);
  EXPECT_EQ(audit.find(token), std::string::npos);
}

TEST_F(Psql, TheAuditRecordIsAShellRecordWithTheFilesSha256) {
  auto file = sql_file("m.sql", "create table audited (x int);\n");
  auto o = run(R"lua(runbook "t" { phase "p" { step "s" { run = function(ctx) ctx.db:psql("m.sql") end } } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  auto recs = records("shell");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0]["sha256"], sha256_file(file));
  EXPECT_EQ(recs[0]["file"], "m.sql");
  EXPECT_EQ(recs[0]["exit_code"], 0);
  EXPECT_EQ(recs[0]["shell"], false);
  EXPECT_EQ(recs[0]["step"], "s");
  EXPECT_EQ(recs[0]["phase"], "p");
  EXPECT_EQ(recs[0]["psql_bin"], db::pg_bin("psql").string());
  EXPECT_EQ(recs[0]["argv"], (json{db::pg_bin("psql").string(), "-X", "-v", "ON_ERROR_STOP=1", "-f", "-"}));
  EXPECT_EQ(recs[0]["stdout_tail"], "CREATE TABLE\n");
}

TEST_F(Psql, AFileOutsideTheRunbooksDirectoryIsRefused) {
  dir.write("outside.sql", "create table escaped (x int);\n");
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx) ctx.db:psql("../outside.sql") end } })lua");
  EXPECT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->kind, error_kind::usage);
  EXPECT_NE(o.error->message.find("is outside the runbook's directory"), std::string::npos) << o.error->message;
  auto o2 = run(R"lua(runbook "t" { step "s" { run = function(ctx) ctx.db:psql("nowhere.sql") end } })lua");
  ASSERT_TRUE(o2.error);
  EXPECT_NE(o2.error->message.find("SQL file 'nowhere.sql' not found"), std::string::npos) << o2.error->message;
  EXPECT_EQ(value("select count(*) from pg_class where relname = 'escaped'"), "0");
}

TEST_F(Psql, ScriptRefusesAFileOutsideTheRunbooksDirectoryToo) {
  // db:script reads the file itself: the same containment as db:psql, or a runbook could send any
  // readable file to the server (and read it back in the error).
  dir.write("outside.sql", "create table escaped (x int);\n");
  for (const char* path : {"../outside.sql", "/etc/hostname.sql"}) {
    auto o = run(std::string(R"lua(runbook "t" { step "s" { run = function(ctx) ctx.db:script(")lua") + path +
                 R"lua(") end } })lua");
    EXPECT_EQ(o.status, "failed") << path;
    ASSERT_TRUE(o.error) << path;
    EXPECT_EQ(o.error->kind, error_kind::usage) << path;
  }
  EXPECT_EQ(value("select count(*) from pg_class where relname = 'escaped'"), "0");
}

}  // namespace

TEST_F(Psql, AnUpperCaseVarIsRefusedSoEchoCannotPrintTheSetLines) {
  sql_file("echo.sql", "select 1;\n");
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    ctx.db:psql("echo.sql", { vars = { ECHO = "all", token = "x" } })
  end } })lua");
  ASSERT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_NE(o.error->message.find("'ECHO' is all upper case"), std::string::npos) << o.error->message;
}
