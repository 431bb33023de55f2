// The session's real transaction state and settings, step after step: a script's own
// BEGIN/COMMIT in and out of transactional phases, failed scripts, a BEGIN left open, settings
// that must not leak into the next step (pg_dump headers), a target's `settings`, and script
// errors that name the .sql file and its line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "bindings/config.hpp"
#include "bindings/open_all.hpp"
#include "bindings/sandbox.hpp"
#include "engine/db/sql_text.hpp"
#include "tests/support/db_helpers.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/runbook_test.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb;
using nlohmann::json;
using strings = std::vector<std::string>;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- reading SQL text -----------------------------------------------------------------------

std::vector<std::string> statements(std::string_view sql) {
  std::vector<std::string> out;
  for (auto s : db::split_statements(sql)) out.emplace_back(sql.substr(s.begin, s.end - s.begin));
  return out;
}

TEST(SqlText, SplitsStatementsWhereTheServerDoes) {
  EXPECT_EQ(statements("select 1; select ';' ; -- a; comment\n select $$;$$, $x$ ; $x$;;"),
            (strings{"select 1", "select ';' ", "select $$;$$, $x$ ; $x$"}));
  EXPECT_EQ(statements("/* a /* nested; */ comment; */ select E'\\';', \"a;b\"; select 2"),
            (strings{"select E'\\';', \"a;b\"", "select 2"}));
  // A SQL-standard function body holds semicolons (and an END) of its own.
  EXPECT_EQ(statements("create or replace function f() returns int language sql\n"
                       "begin atomic select 1; select case when true then 2 end; end;\nselect 3"),
            (strings{"create or replace function f() returns int language sql\n"
                     "begin atomic select 1; select case when true then 2 end; end",
                     "select 3"}));
  EXPECT_TRUE(statements(" ;\n -- nothing\n ; ").empty());
}

TEST(SqlText, FindsTopLevelTransactionControlOnly) {
  auto verb = [](std::string_view sql) {
    auto c = db::find_transaction_control(sql);
    return c ? c->verb : std::string("-");
  };
  EXPECT_EQ(verb("create table d (id int); COMMIT;"), "COMMIT");
  EXPECT_EQ(verb("-- deploy\nBegin;\ncreate table d (id int);"), "BEGIN");
  EXPECT_EQ(verb("start transaction isolation level serializable"), "START TRANSACTION");
  EXPECT_EQ(verb("select 1; end"), "END");
  EXPECT_EQ(verb("rollback and chain"), "ROLLBACK");
  EXPECT_EQ(verb("prepare transaction 'x'"), "PREPARE TRANSACTION");
  EXPECT_EQ(verb("savepoint a; rollback to a; rollback work to savepoint a; release a"), "-");
  EXPECT_EQ(verb("commit prepared 'x'; rollback prepared 'y'"), "-");
  EXPECT_EQ(verb("do $$ begin commit; end $$; select 'commit;'; -- commit;\n/* begin; */"), "-");
  EXPECT_EQ(verb("create procedure p() language sql begin atomic insert into t values (1); end"), "-");
  EXPECT_EQ(db::line_at("a\nb\r\nc\rd", 7), 4);
  EXPECT_EQ(db::offset_of_position("é\nx", 3, true), 3u);  // the server counts characters
}

// ---- the connection ---------------------------------------------------------------------------

class SessionState : public rb::testing::RunbookTest {
 protected:
  void SetUp() override { dsn = rb::testing::fresh_database("session_state"); }
  std::unique_ptr<db::connection> connect() { return rb::testing::connect(dsn); }
  /// Runs SQL on the test database, outside any run.
  void exec(const std::string& sql) { connect()->exec(sql); }
  /// One value from the test database, outside any run.
  std::string value(const std::string& sql) {
    auto c = connect();
    return rb::testing::scalar(*c, sql);
  }
  bool table_exists(const std::string& name) { return value("select to_regclass('" + name + "') is not null") == "t"; }
  std::string error_of(const run::run_outcome& o) { return o.error ? o.error->describe() : std::string("(none)"); }
};

TEST_F(SessionState, AScriptsOwnCommitInsideTheCallersTransactionIsRefusedBeforeItRuns) {
  auto c = connect();
  c->begin();
  auto e = rb::testing::failure_of([&] { c->script("BEGIN;\nCREATE TABLE d (id int);\nCOMMIT;", "d.sql"); });
  EXPECT_EQ(e.sqlstate(), "2D000");
  EXPECT_THAT(e.what(), HasSubstr("d.sql:1: BEGIN would begin a transaction inside the transaction"));
  EXPECT_TRUE(c->in_transaction());
  EXPECT_FALSE(c->transaction_failed());  // nothing was sent
  c->rollback();
  EXPECT_FALSE(table_exists("d"));
}

TEST_F(SessionState, AFailedScriptRollsBackTheTransactionItBegan) {
  auto c = connect();
  auto e = rb::testing::failure_of([&] { c->script("BEGIN;\nCREATE TABLE e (id int);\nSELECT 1/0;\nCOMMIT;", "e.sql"); });
  EXPECT_EQ(e.sqlstate(), "22012");
  EXPECT_THAT(e.what(), HasSubstr("e.sql:3: division by zero"));
  EXPECT_THAT(e.what(), HasSubstr("(its own BEGIN) was rolled back"));
  EXPECT_FALSE(c->in_transaction());
  EXPECT_EQ(rb::testing::scalar(*c, "select 1"), "1");  // usable: no 25P02
  EXPECT_FALSE(table_exists("e"));
}

TEST_F(SessionState, ScriptErrorsNameTheFileAndTheLine) {
  auto c = connect();
  // A parse error: the server's position (in characters: the é counts once) gives the line.
  auto parse = rb::testing::failure_of([&] { c->script("-- é\nselect 1;\n\nselect * from nowhere;\n", "m/001.sql"); });
  EXPECT_THAT(parse.what(), HasSubstr("run script m/001.sql"));
  EXPECT_THAT(parse.what(), HasSubstr("m/001.sql:4: relation \"nowhere\" does not exist"));
  // A runtime error has no position: the statement it reached gives the line.
  auto runtime = rb::testing::failure_of(
      [&] { c->script("create table z (id int);\ninsert into z values (1);\n\n  /* next */ insert into z values (1/0);", "z.sql"); });
  EXPECT_THAT(runtime.what(), HasSubstr("z.sql:4: division by zero"));
  EXPECT_FALSE(table_exists("z"));  // one implicit transaction: the whole script is undone
}

TEST_F(SessionState, ResetRestoresTheTimeoutsAndSettingsAfterTheCallersSet) {
  auto c = connect();
  c->exec("create schema app");
  c->set_lock_timeout(std::chrono::seconds(1));
  c->set_session_settings({{"search_path", "app, public"}});
  EXPECT_EQ(rb::testing::scalar(*c, "show search_path"), "app, public");
  c->script("SET lock_timeout = 0; SELECT pg_catalog.set_config('search_path', '', false); SET work_mem = '7MB';");
  EXPECT_EQ(rb::testing::scalar(*c, "show lock_timeout"), "0");  // within a step, its own SET holds
  c->reset_session();
  EXPECT_EQ(rb::testing::scalar(*c, "show lock_timeout"), "1s");
  EXPECT_EQ(rb::testing::scalar(*c, "show search_path"), "app, public");
  EXPECT_EQ(rb::testing::scalar(*c, "show work_mem"), "4MB");
}

// ---- steps and phases ---------------------------------------------------------------------------

TEST_F(SessionState, ACommitInAScriptOfATransactionalPhaseFailsTheStepAndCommitsNothing) {
  dir.write("runbooks/d.sql", "BEGIN;\nCREATE TABLE d (id int);\nCOMMIT;\n");
  auto o = run(R"lua(runbook "t" {
    phase "migrate" { transaction = true,
      step "first" { run = function(ctx) ctx.db:exec("create table c (id int)") end },
      step "one" { run = function(ctx) ctx.db:script("d.sql") end },
    },
  })lua");
  EXPECT_EQ(o.status, "rolled_back");
  EXPECT_EQ(o.exit_code(), 1);
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->sqlstate, "2D000");
  EXPECT_THAT(o.error->message, HasSubstr("step 'one' of phase 'migrate'"));
  EXPECT_THAT(o.error->message, HasSubstr("d.sql:1: BEGIN would begin a transaction inside"));
  EXPECT_THAT(o.error->hint, HasSubstr("transaction = true"));
  EXPECT_FALSE(table_exists("d"));
  EXPECT_FALSE(table_exists("c"));
  auto ends = records("phase.end");
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0]["transaction"], "rolled_back");
  EXPECT_EQ(records("run.end").at(0)["status"], "rolled_back");
}

TEST_F(SessionState, AScriptFailingAfterItsOwnBeginLeavesTheSessionUsableForRollbackHandlers) {
  auto o = run(R"lua(runbook "t" {
    step "one" {
      run = function(ctx) ctx.db:exec("create table a1 (id int)") end,
      rollback = function(ctx) ctx.db:exec("drop table a1") end,
    },
    step "two" { run = function(ctx)
      ctx.db:script("BEGIN; CREATE TABLE e (id int); SELECT 1/0; COMMIT;")
    end },
  })lua");
  EXPECT_EQ(o.status, "rolled_back") << error_of(o);
  EXPECT_EQ(o.exit_code(), 1);
  EXPECT_FALSE(table_exists("a1"));  // step one's rollback ran, on a usable session
  EXPECT_FALSE(table_exists("e"));
  auto rb = records("rollback.end");
  ASSERT_EQ(rb.size(), 1u);
  EXPECT_EQ(rb[0]["status"], "succeeded");
}

TEST_F(SessionState, AStepThatLeavesItsBeginOpenFailsAndItsWorkIsRolledBack) {
  auto o = run(R"lua(runbook "t" {
    step "open" {
      run = function(ctx) ctx.db:script("BEGIN; CREATE TABLE y (id int);") end,
      verify = function(ctx) check(ctx.db:scalar("select to_regclass('y') is not null"), "no y") end,
    },
    step "after" { run = function(ctx) ctx.log(ctx.db:scalar("select count(*) from pg_class where relname = 'y'")) end },
  })lua");
  EXPECT_EQ(o.status, "failed") << error_of(o);
  EXPECT_EQ(o.exit_code(), 1);
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->klass, "transaction_open");
  EXPECT_THAT(o.error->message, HasSubstr("step 'open'"));
  EXPECT_THAT(o.error->message, HasSubstr("left it open without COMMIT"));
  EXPECT_TRUE(records("verify").empty());  // it never saw its own uncommitted table
  EXPECT_TRUE(logged().empty());
  EXPECT_FALSE(table_exists("y"));
}

TEST_F(SessionState, ACommitTheCheckCannotSeeIsCaughtAfterwardsAndTheAuditSaysCommitted) {
  // With standard_conforming_strings off the server reads \' as an escaped quote, where the
  // check before running (which reads SQL as PostgreSQL's default does) sees a string end: so
  // the COMMIT below runs. The engine sees it afterwards, and says what really happened.
  auto o = run(R"lua(runbook "t" {
    phase "p" { transaction = true,
      step "first" {
        run = function(ctx) ctx.db:exec("create table c1 (id int)") end,
        rollback = function(ctx) ctx.db:exec("drop table c1") end,
      },
      step "sneaky" { run = function(ctx)
        ctx.db:exec("set standard_conforming_strings = off")
        ctx.db:exec("create table c2 (id int)")
        ctx.db:script([[SELECT 'x\'; SELECT '; COMMIT; SELECT '';]])
      end },
    },
  })lua");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->sqlstate, "2D000") << o.error->message;
  EXPECT_THAT(o.error->message, HasSubstr("was COMMITTED"));
  EXPECT_EQ(records("phase.end").at(0)["transaction"], "committed");
  EXPECT_TRUE(table_exists("c2"));   // committed by the script: the audit does not pretend otherwise
  EXPECT_FALSE(table_exists("c1"));  // committed too, then undone by its rollback handler
  auto undone = records("rollback.end");
  ASSERT_EQ(undone.size(), 1u);
  EXPECT_EQ(undone[0]["step"], "first");
  EXPECT_EQ(o.status, "rolled_back");
  EXPECT_EQ(o.exit_code(), 1);
}

TEST_F(SessionState, SettingsAStepSetsDoNotReachTheNextStep) {
  exec("create table t (id int)");
  // What every pg_dump header says, run by one step.
  dir.write("runbooks/dump_header.sql",
            "SET statement_timeout = 0;\nSET lock_timeout = 0;\n"
            "SELECT pg_catalog.set_config('search_path', '', false);\nSET standard_conforming_strings = off;\n");
  auto holder = connect();
  holder->begin();
  holder->exec("lock table t in access exclusive mode");
  auto o = run(R"lua(runbook "t" {
    step "restore header" { run = function(ctx) ctx.db:script("dump_header.sql") end },
    step "next" { lock_timeout = "1s", timeout = "20s", run = function(ctx)
      ctx.log(ctx.db:scalar("show lock_timeout"), ctx.db:scalar("show search_path"),
              ctx.db:scalar("show standard_conforming_strings"))
      local ok, e = pcall(function() ctx.db:query("select * from t") end)
      ctx.log(tostring(ok), e and e.sqlstate or "")
    end },
  })lua");
  holder->rollback();
  ASSERT_EQ(o.status, "succeeded") << error_of(o);
  EXPECT_EQ(logged(), (strings{"1s \"$user\", public on", "false 55P03"}));
}

TEST_F(SessionState, SettingsDoNotLeakBetweenStepsOfATransactionalPhase) {
  auto o = run(R"lua(runbook "t" {
    phase "p" { transaction = true,
      step "one" { run = function(ctx) ctx.db:exec("set lock_timeout = 0") ctx.db:exec("set local work_mem = '7MB'") end },
      step "two" { lock_timeout = "2s", run = function(ctx)
        ctx.log(ctx.db:scalar("show lock_timeout"), ctx.db:scalar("show work_mem"))
      end },
    },
  })lua");
  ASSERT_EQ(o.status, "succeeded") << error_of(o);
  EXPECT_EQ(logged(), (strings{"2s 4MB"}));
}

TEST_F(SessionState, ATargetsSettingsAreInForceAtEveryStep) {
  exec("create schema app");
  exec("create table app.w (id int)");
  target_settings = {{"search_path", "app, public"}, {"application_name", "migrations"}};
  auto o = run(R"lua(runbook "t" {
    step "one" { run = function(ctx)
      ctx.log(ctx.db:scalar("show search_path"), ctx.db:scalar("select count(*) from w"))
      ctx.db:exec("set search_path = ''")
    end },
    step "two" { run = function(ctx)
      ctx.log(ctx.db:scalar("show search_path"), ctx.db:scalar("show application_name"))
    end },
  })lua");
  ASSERT_EQ(o.status, "succeeded") << error_of(o);
  EXPECT_EQ(logged(), (strings{"app, public 0", "app, public migrations"}));
}

TEST_F(SessionState, ConcurrentIndexInATransactionalPhaseSaysWhatToDoInstead) {
  exec("create table t (id int)");
  auto o = run(R"lua(runbook "t" {
    phase "indexes" { transaction = true,
      step "index" { run = function(ctx) ctx.db:exec("create index concurrently t_id on t (id)") end },
    },
  })lua");
  EXPECT_EQ(o.status, "rolled_back");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->sqlstate, "25001");
  EXPECT_THAT(o.error->message, HasSubstr("step 'index' of phase 'indexes'"));
  EXPECT_THAT(o.error->message, HasSubstr("(transaction = true)"));
  EXPECT_THAT(o.error->hint, HasSubstr("phase without transaction = true"));
}

TEST_F(SessionState, AProcedureThatCommitsInATransactionalPhaseFailsTheStepWithAdvice) {
  exec("create table t (id int)");
  exec("create procedure p() language plpgsql as $$ begin insert into t values (1); commit; end $$");
  auto o = run(R"lua(runbook "t" {
    phase "load" { transaction = true,
      step "call" { run = function(ctx) ctx.db:exec("call p()") end },
    },
  })lua");
  EXPECT_EQ(o.status, "rolled_back");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->sqlstate, "2D000");
  EXPECT_EQ(o.error->klass, "invalid_transaction_termination");
  EXPECT_THAT(o.error->message, HasSubstr("step 'call' of phase 'load'"));
  EXPECT_THAT(o.error->hint, HasSubstr("phase without transaction = true"));
  EXPECT_EQ(value("select count(*) from t"), "0");
  EXPECT_EQ(records("phase.end").at(0)["transaction"], "rolled_back");
}

TEST_F(SessionState, AFailingScriptStepNamesTheSqlFileLineAndTheLuaLine) {
  dir.write("runbooks/m.sql", "create table m (id int);\n-- then\ninsert into m values (1/0);\n");
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    local ok, e = pcall(function() ctx.db:script("select 1;\nselect * from nowhere;", { file = "inline.sql" }) end)
    ctx.log(e.message:match("inline%.sql:%d+") or e.message)
    ctx.db:script("m.sql")
  end } })lua");
  EXPECT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(logged(), (strings{"inline.sql:2"}));
  EXPECT_THAT(o.error->message, HasSubstr("m.sql:3: division by zero"));
  EXPECT_THAT(o.error->source, HasSubstr("t.lua"));
  EXPECT_EQ(o.error->line, 4);
  EXPECT_FALSE(table_exists("m"));
}

TEST(TargetConfig, SettingsAreValidatedAndNameTheTarget) {
  rb::testing::temp_dir dir{"rb-config-test"};
  auto load = [&](const std::string& text) {
    auto file = dir.write("runbook.lua", text);
    lua::sandbox sb;
    lua::open_all(sb);
    return lua::load_config(sb, file);
  };
  auto cfg = load(R"(return { targets = { primary = { dsn = "dbname=app",
                    settings = { search_path = "app, public", jit = false, work_mem = 65536 } } } })");
  auto& s = cfg.targets.at("primary").settings;
  EXPECT_EQ(s.size(), 3u);
  EXPECT_NE(std::find(s.begin(), s.end(), std::pair<std::string, std::string>{"search_path", "app, public"}), s.end());
  EXPECT_NE(std::find(s.begin(), s.end(), std::pair<std::string, std::string>{"jit", "off"}), s.end());
  EXPECT_NE(std::find(s.begin(), s.end(), std::pair<std::string, std::string>{"work_mem", "65536"}), s.end());
  auto message = [&](const std::string& text) {
    try {
      load(text);
    } catch (const rb::error& e) {
      return std::string(e.what());
    }
    return std::string("(loaded)");
  };
  EXPECT_THAT(message(R"(return { targets = { primary = { dsn = "dbname=app", settings = { search_path = { "a" } } } } })"),
              HasSubstr("target 'primary': settings.search_path must be a string, number or boolean"));
  EXPECT_THAT(message(R"(return { targets = { primary = { dsn = "dbname=app", settings = { ["x; drop"] = "1" } } } })"),
              HasSubstr("target 'primary': settings: 'x; drop' is not a PostgreSQL setting name"));
  EXPECT_THAT(message(R"(return { targets = { primary = { dsn = "dbname=app", settings = { lock_timeout = "1s" } } } })"),
              HasSubstr("lock_timeout field"));
  EXPECT_THAT(message(R"(return { targets = { primary = { dsn = "dbname=app", settings = "search_path=app" } } })"),
              HasSubstr("target 'primary': settings must be a table"));
}

}  // namespace
