// ctx.db against a real PostgreSQL: typed values and NULL, bound parameters (injection stays
// data), streaming in bounded memory, transactional phases with savepoints, timeouts, a killed
// backend, an in-doubt COMMIT, advisory locks, notices, and the `sql` audit records.
#include <gtest/gtest.h>

#include <sstream>

#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/db/advisory_lock.hpp"
#include "engine/db/connection.hpp"
#include "engine/run/executor.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/runbook_test.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb;
using nlohmann::json;
using strings = std::vector<std::string>;

/// A fresh database, a runbook loaded from source, and a run against that database.
class Db : public rb::testing::RunbookTest {
 protected:
  void SetUp() override { dsn = rb::testing::fresh_database("db_test"); }

  /// Plain SQL on the test database, outside any run (several statements: no result).
  db::result sql(const std::string& text, const std::vector<db::param>& params = {}) {
    db::connection c({dsn, "test", "test"});
    if (params.empty() && text.find(';') != std::string::npos) {
      c.script(text);
      return {};
    }
    return c.exec(text, params);
  }
};

TEST_F(Db, ValuesComeBackTyped) {
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    local r = ctx.db:query([[select 42::int as i, 9007199254740993::int8 as big, 1.5::float8 as f,
      12.25::numeric as n, 123456789012345678901234.5::numeric as exact, true as b, 'x'::text as t,
      null::int as nothing, '{"a":[1,2,{"b":null}]}'::jsonb as j, array[1,2,3] as arr,
      array['a b', null, 'c'] as words, '2026-01-02 03:04:05+00'::timestamptz as ts]])[1]
    ctx.log(type(r.i), r.i, r.big, r.f, r.n, r.exact, tostring(r.b), r.t, tostring(r.nothing == db.null))
    ctx.log(#r.j.a, r.j.a[2], type(r.j.a[3]), #r.arr, r.arr[3], r.words[1], tostring(r.words[2] == db.null), r.ts)
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"number 42 9007199254740993 1.5 12.25 123456789012345678901234.5 true x true",
                               "3 2 table 3 3 a b true 2026-01-02T03:04:05+00:00"}));
}

TEST_F(Db, ParametersAreBoundSoInjectionStaysData) {
  sql("create table notes (id serial primary key, body text)");
  auto o = run(R"lua(runbook "t" { params = { body = { type = "string" } }, step "s" { run = function(ctx)
    ctx.db:exec("insert into notes (body) values ($1)", ctx.params.body)
    ctx.db:exec("insert into notes (body) values ($1)", db.null)
    ctx.log(ctx.db:scalar("select count(*) from notes where body = $1", ctx.params.body))
  end } })lua", {{"body", "x'); drop table notes; --"}});
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  auto r = sql("select body from notes order by id");
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0][0].text, "x'); drop table notes; --");
  EXPECT_TRUE(r.rows[1][0].null);
  EXPECT_EQ(logged(), (strings{"1"}));
  // The audit has the statement and the number of parameters, never their values.
  bool found = false;
  for (auto& rec : records("sql")) {
    EXPECT_EQ(rec.dump().find("drop table notes"), std::string::npos);
    if (rec["sql"] == "insert into notes (body) values ($1)") {
      found = true;
      EXPECT_EQ(rec["params"], 1);
      EXPECT_EQ(rec["executions"], 2);  // the two inserts in a row make one record
      EXPECT_EQ(rec["rows"], 2);
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(Db, ErrorsAreTablesWithSqlstateClassAndDetail) {
  sql("create table u (id int primary key)");
  sql("insert into u values (1)");
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    local ok, e = pcall(function() ctx.db:exec("insert into u values ($1)", 1) end)
    ctx.log(tostring(ok), e.sqlstate, e.class, e.detail)
    ctx.log(tostring(e):find("unique") ~= nil and "readable" or tostring(e))
    local ok2, e2 = pcall(function() ctx.db:query("select * from missing_table") end)
    ctx.log(e2.class, e2.sqlstate)
    ctx.db:exec("insert into u values ($1)", 1)
  end } })lua");
  EXPECT_EQ(o.status, "failed");
  auto l = logged();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0], "false 23505 unique_violation Key (id)=(1) already exists.");
  EXPECT_EQ(l[1], "readable");
  EXPECT_EQ(l[2], "undefined_table 42P01");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->sqlstate, "23505");
  EXPECT_EQ(o.error->klass, "unique_violation");
}

TEST_F(Db, AFailingStepInATransactionalPhaseLeavesNothingCommitted) {
  sql("create table t (id int primary key, note text)");
  auto o = run(R"lua(runbook "t" {
    phase "migrate" { transaction = true,
      step "one" { run = function(ctx) ctx.db:exec("insert into t values (1, 'one')") end },
      step "two" { run = function(ctx) ctx.db:exec("insert into t values (2, 'two')") end },
      step "three" { run = function(ctx)
        ctx.db:exec("insert into t values (3, 'three')")
        ctx.db:exec("insert into t values (1, 'duplicate')")
      end },
    },
  })lua");
  EXPECT_EQ(o.status, "rolled_back");  // the phase's transaction was rolled back
  EXPECT_EQ(o.error->klass, "unique_violation");
  EXPECT_EQ(sql("select count(*) from t").rows[0][0].text, "0");
  auto ends = records("phase.end");
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0]["transaction"], "rolled_back");
}

TEST_F(Db, AContinuedStepRollsBackToItsSavepointAndThePhaseCommitsTheRest) {
  sql("create table t (id int primary key)");
  auto o = run(R"lua(runbook "t" {
    phase "migrate" { transaction = true,
      step "one" { run = function(ctx) ctx.db:exec("insert into t values (1)") end },
      step "optional" { on_error = "continue", run = function(ctx)
        ctx.db:exec("insert into t values (2)")
        ctx.db:exec("insert into t values (1)")
      end },
      step "three" { run = function(ctx) ctx.db:exec("insert into t values (3)") end },
    },
  })lua");
  EXPECT_EQ(o.status, "succeeded_with_failures") << (o.error ? o.error->describe() : "");
  auto r = sql("select string_agg(id::text, ',' order by id) from t");
  EXPECT_EQ(r.rows[0][0].text, "1,3");
}

TEST_F(Db, RetriesRollBackToTheSavepointBetweenAttempts) {
  sql("create table t (id int primary key)");
  auto o = run(R"lua(runbook "t" {
    phase "migrate" { transaction = true,
      step "flaky" { retry = { attempts = 3, initial = "10ms" }, run = function(ctx)
        ctx.db:exec("insert into t values (10)")
        if ctx.attempt < 3 then error({ kind = "sql", class = "serialization_failure", sqlstate = "40001", message = "try again" }) end
      end },
    },
  })lua");
  EXPECT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(sql("select count(*) from t").rows[0][0].text, "1");
}

TEST_F(Db, ALaterPhaseFailureCompensatesCommittedPhasesInReverse) {
  sql("create table t (id int primary key)");
  auto o = run(R"lua(runbook "t" {
    phase "migrate" { transaction = true,
      step "a" { run = function(ctx) ctx.db:exec("insert into t values (1)") end,
                 rollback = function(ctx) ctx.db:exec("delete from t where id = 1") end },
      step "b" { run = function(ctx) ctx.db:exec("insert into t values (2)") end,
                 rollback = function(ctx) ctx.db:exec("delete from t where id = 2") end },
    },
    phase "verify" { step "v" { run = function(ctx) check(ctx.db:scalar("select count(*) from t") == 3, "expected 3 rows") end } },
  })lua");
  EXPECT_EQ(o.status, "rolled_back");
  EXPECT_EQ(sql("select count(*) from t").rows[0][0].text, "0");
  auto rb = records("rollback.end");
  ASSERT_EQ(rb.size(), 2u);
  EXPECT_EQ(rb[0]["step"], "b");
  EXPECT_EQ(rb[1]["step"], "a");
}

TEST_F(Db, RowsStreamsInBoundedMemory) {
  // 300k rows of ~100 bytes would be ~60 MiB as Lua tables; the sandbox has 24 MiB.
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    local n, sum = 0, 0
    for row in ctx.db:rows("select g, repeat('x', 100) as pad from generate_series(1, $1) g", 300000) do
      n = n + 1
      sum = sum + row.g
    end
    ctx.log(n, sum)
    -- a loop left with break does not leave the cursor (or its transaction) open
    for row in ctx.db:rows("select g from generate_series(1, 10) g") do if row.g == 3 then break end end
  end },
  step "after" { run = function(ctx) ctx.db:exec("create table after_rows (x int)") end } })lua",
               json::object(), std::size_t{24} << 20);
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"300000 45000150000"}));
  EXPECT_EQ(sql("select count(*) from pg_class where relname = 'after_rows'").rows[0][0].text, "1");
}

TEST_F(Db, RowsLeftByBreakOrErrorLeaveNoCursorAndCommitWhatTheLoopWrote) {
  sql("create table seen (g int)");
  auto o = run(R"lua(runbook "t" {
  step "break" { run = function(ctx)
    for row in ctx.db:rows("select g from generate_series(1, 5000) g") do
      ctx.db:exec("insert into seen values ($1)", row.g)  -- in the transaction the cursor opened
      if row.g == 3 then break end
    end
    ctx.log("open", ctx.db:scalar("select count(*) from pg_cursors where name <> ''"))
  end },
  step "error" { run = function(ctx)
    local ok, e = pcall(function()
      for row in ctx.db:rows("select 1 / (g - 1500) as v from generate_series(1, 2000) g") do end
    end)
    ctx.log(tostring(ok), e.sqlstate, ctx.db:scalar("select count(*) from pg_cursors where name <> ''"))
  end },
  step "after" { run = function(ctx)
    ctx.db:exec("insert into seen values (0)")  -- its own transaction, unless one was left open
    ctx.log("after", ctx.db:scalar("select count(*) from pg_cursors where name <> ''"),
            tostring(ctx.db:scalar("select pg_current_xact_id_if_assigned() is null")))
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  // Open until its step ends; a failed fetch (the second batch reaches g = 1500) closes it at
  // once; the next step runs in no leftover transaction, and the rows written in the loop
  // were committed.
  EXPECT_EQ(logged(), (strings{"open 1", "false 22012 0", "after 0 true"}));
  EXPECT_EQ(sql("select count(*) from seen").rows[0][0].text, "4");
}

TEST_F(Db, ScriptRunsMigrationFilesAndNoticesAreAudited) {
  dir.write("runbooks/001_create.sql", R"(
    create table widgets (id serial primary key, name text not null);
    do $$ begin raise notice 'widgets ready'; end $$;
    insert into widgets (name) values ('a'), ('b');
  )");
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    ctx.db:script("001_create.sql")
    local n = ctx.db:notices()
    ctx.log(#n, n[1])
    ctx.log(ctx.db:scalar("select count(*) from widgets"))
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  auto l = logged();
  ASSERT_EQ(l.size(), 2u);
  EXPECT_NE(l[0].find("widgets ready"), std::string::npos) << l[0];
  EXPECT_EQ(l[1], "2");
  bool noticed = false;
  for (auto& r : records("sql"))
    if (r.contains("notices")) noticed = noticed || r["notices"].dump().find("widgets ready") != std::string::npos;
  EXPECT_TRUE(noticed);
}

TEST_F(Db, ExplainSaysWhetherAnIndexIsUsed) {
  sql("create table m (id serial primary key, conversation_id int, created_at timestamptz default now())");
  sql("insert into m (conversation_id) select g % 100 from generate_series(1, 20000) g");
  sql("create index idx_m_conversation_created on m (conversation_id, created_at)");
  sql("analyze m");
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    local e = ctx.db:explain("select * from m where conversation_id = $1 order by created_at", 7)
    ctx.log(tostring(e.uses_index), e.indexes[1])
    local s = ctx.db:explain("select * from m where created_at < now()")
    ctx.log(tostring(s.uses_index), tostring(s.seq_scan))
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"true idx_m_conversation_created", "false true"}));
}

TEST_F(Db, AStatementPastTheStepTimeLimitIsCancelledAndTheConnectionStaysUsable) {
  auto t0 = std::chrono::steady_clock::now();
  auto o = run(R"lua(runbook "t" {
    step "slow" { timeout = "500ms", on_error = "continue", run = function(ctx) ctx.db:exec("select pg_sleep(20)") end },
    step "after" { run = function(ctx) ctx.log(ctx.db:scalar("select 1")) end },
  })lua");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(o.status, "succeeded_with_failures") << (o.error ? o.error->describe() : "");
  auto ends = records("step.end");
  ASSERT_EQ(ends.size(), 2u);
  EXPECT_EQ(ends[0]["error"]["kind"], "timeout");
  EXPECT_EQ(logged(), (strings{"1"}));
}

TEST_F(Db, LockTimeoutStopsAStepWaitingBehindALock) {
  sql("create table busy (id int)");
  db::connection holder({dsn, "holder", "test"});
  holder.begin();
  holder.exec("lock table busy in access exclusive mode");
  auto o = run(R"lua(runbook "t" {
    step "wait" { lock_timeout = "300ms", run = function(ctx) ctx.db:exec("insert into busy values (1)") end },
  })lua");
  holder.rollback();
  EXPECT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->sqlstate, "55P03");
  EXPECT_EQ(o.error->klass, "lock_not_available");
}

TEST_F(Db, AKilledBackendIsAConnectionErrorAndARetryReconnects) {
  auto o = run(R"lua(runbook "t" {
    step "s" { retry = { attempts = 2, initial = "10ms", on = { "connection" } }, run = function(ctx)
      if ctx.attempt == 1 then
        local other = db.connect()
        other:exec("select pg_terminate_backend($1)", ctx.db:scalar("select pg_backend_pid()"))
        other:close()
        ctx.db:exec("select 1")  -- the session is gone
      end
      ctx.log("attempt " .. ctx.attempt .. " sees " .. ctx.db:scalar("select 7"))
    end },
  })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"attempt 2 sees 7"}));
  auto retries = records("step.retry");
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0]["error"]["kind"], "connection");
}

TEST_F(Db, ACommitLostInFlightIsSettledByAskingTheServerAndNotRetried) {
  // A deferred constraint trigger runs at COMMIT and kills its own backend: the client loses
  // the connection in the middle of COMMIT and cannot know by itself whether it committed; it
  // asks the server (pg_xact_status) on a new session, which says it was rolled back.
  sql(R"(create table t (id int);
         create function die() returns trigger language plpgsql as $$
           begin perform pg_terminate_backend(pg_backend_pid()); return null; end $$;
         create constraint trigger die_at_commit after insert on t deferrable initially deferred
           for each row execute function die();)");
  auto o = run(R"lua(runbook "t" {
    phase "migrate" { transaction = true,
      step "insert" { retry = { attempts = 3, initial = "10ms" }, run = function(ctx) ctx.db:exec("insert into t values (1)") end } },
  })lua");
  EXPECT_EQ(o.status, "rolled_back");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->kind, error_kind::connection);
  EXPECT_NE(o.error->message.find("was rolled back"), std::string::npos) << o.error->message;
  auto settled = records("phase.recovered");
  ASSERT_EQ(settled.size(), 1u);
  EXPECT_EQ(settled[0]["xact_status"], "aborted");
  EXPECT_EQ(settled[0]["xid"], records("phase.commit").at(0)["xid"]);
  EXPECT_EQ(records("phase.in_doubt").size(), 0u);
  EXPECT_EQ(records("step.retry").size(), 0u);
  EXPECT_EQ(sql("select count(*) from t").rows[0][0].text, "0");
}

TEST_F(Db, TransactionAndSavepointAndLockHelpers) {
  sql("create table t (id int)");
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    pcall(ctx.db.transaction, ctx.db, function()
      ctx.db:exec("insert into t values (1)")
      error("changed my mind")
    end)
    ctx.db:transaction(function()
      ctx.db:exec("insert into t values (2)")
      pcall(ctx.db.savepoint, ctx.db, "inner", function()
        ctx.db:exec("insert into t values (3)")
        error("undo 3 only")
      end)
    end)
    ctx.db:lock("maintenance", function() ctx.db:exec("insert into t values (4)") end)
    ctx.log(ctx.db:scalar("select string_agg(id::text, ',' order by id) from t"))
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"2,4"}));
}

TEST_F(Db, LockTrueRefusesASecondRunOfTheSameRunbook) {
  db::connection holder({dsn, "holder", "test"});
  auto key = std::to_string(db::advisory_key("runbook:t"));
  holder.exec("select pg_advisory_lock($1::bigint)", {key});
  try {
    run(R"lua(runbook "t" { lock = true, step "s" { run = function(ctx) ctx.log("must not run") end } })lua");
    FAIL() << "expected the run to be refused";
  } catch (const error& e) {
    EXPECT_EQ(e.kind(), error_kind::locked);
    EXPECT_EQ(e.exit_code(), 75);
  }
  holder.exec("select pg_advisory_unlock($1::bigint)", {key});
  auto o = run(R"lua(runbook "t" { lock = true, step "s" { run = function(ctx) ctx.log("ran") end } })lua");
  EXPECT_EQ(o.status, "succeeded");
}

TEST_F(Db, StdlibHealthChecksWork) {
  sql("create table users (id serial primary key, email text); create table convs (id serial, user_id int)");
  sql("insert into users (email) values ('a'), ('a'), ('b'); insert into convs (user_id) values (1), (99), (null)");
  auto o = run(R"lua(local health = require "health"
  runbook "t" { step "s" { run = function(ctx)
    ctx.log(health.orphans(ctx.db, "convs", "user_id", "users"), health.duplicates(ctx.db, "users", { "email" }),
            tostring(health.table_exists(ctx.db, "users")), tostring(health.table_exists(ctx.db, "nope")))
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"1 1 true false"}));
}

TEST_F(Db, StdlibHealthExplainReadsTheAnalyzedPlan) {
  sql("create table m (id serial primary key, conv int, at timestamptz default now()); "
      "create index m_conv_at on m (conv, at); insert into m (conv) select g % 50 from generate_series(1, 5000) g; analyze m");
  auto o = run(R"lua(local health = require "health"
  runbook "t" { step "s" { run = function(ctx)
    local e = health.explain(ctx.db, "select * from m where conv = $1 order by at", 7)
    ctx.log(table.concat(e.indexes, ","), tostring(health.uses_index(e, "m_conv_at")), tostring(health.uses_index(e, "nope")),
            tostring(e.ms >= 0 and e.planning_ms >= 0), tostring(e.plan["Actual Rows"] == 100), #e.seq_scans)
    local all = health.explain(ctx.db, "select count(*) from m")
    ctx.log(table.concat(all.nodes, ">"), table.concat(all.seq_scans, ","), #all.indexes)
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  auto lines = logged();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "m_conv_at true false true true 0");
  EXPECT_EQ(lines[1].substr(lines[1].size() - 4), " m 0") << lines[1];
  EXPECT_NE(lines[1].find("Seq Scan"), std::string::npos) << lines[1];
}

}  // namespace

namespace {

TEST_F(Db, ResumeRerunsAnUncommittedTransactionalPhaseFromItsFirstStep) {
  sql("create table t (id int primary key)");
  const std::string source = R"lua(runbook "t" {
    phase "before" { step "prep" { run = function(ctx) ctx.log("prep") end } },
    phase "migrate" { transaction = true,
      step "a" { run = function(ctx) ctx.db:exec("insert into t values (1)") ctx.log("a") end },
      step "b" { run = function(ctx) ctx.db:exec("insert into t values (2)") ctx.log("b") end },
    },
  })lua";
  // Load the runbook (a throwaway run against another database), then forge the journal of a
  // run that crashed inside the transactional phase after step a's savepoint was released.
  auto file = dir.write("runbooks/t.lua", source);
  book = {};
  sb = std::make_unique<lua::sandbox>();
  lua::open_all(*sb);
  book = lua::load_runbook(*sb, file, "t");
  log = std::make_unique<audit::log>(dir.path() / "audit.jsonl");
  std::string id = "20260101T000000Z-a1b2c3";
  log->append(id, "run.start", {{"runbook", "t"}, {"sha256", book.file_sha256}, {"params", json::object()}});
  log->append(id, "step.end", {{"phase", "before"}, {"step", "prep"}, {"status", "succeeded"}});
  log->append(id, "phase.end", {{"phase", "before"}, {"status", "succeeded"}});
  log->append(id, "phase.start", {{"phase", "migrate"}, {"transaction", true}});
  log->append(id, "step.end", {{"phase", "migrate"}, {"step", "a"}, {"status", "succeeded"}});
  log->append(id, "step.start", {{"phase", "migrate"}, {"step", "b"}});
  run::resolved_target t;
  t.name = "test";
  t.dsn = dsn;
  run::target_session session(t);
  run::executor exec(*log, out, clk, confirm);
  exec.use_target(session);
  auto o = exec.resume(book, run::load_run(log->path(), id), {});
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  // Step a's work died with the crashed transaction, so it runs again; prep does not.
  EXPECT_EQ(logged(), (strings{"a", "b"}));
  EXPECT_EQ(sql("select count(*) from t").rows[0][0].text, "2");
}

}  // namespace

namespace {

TEST_F(Db, ARepeatedWriteIsPreparedOnceAndSurvivesAnAlterTable) {
  sql("create table t (id int)");
  auto o = run(R"lua(runbook "t" { step "s" { run = function(ctx)
    for i = 1, 5 do ctx.db:exec("insert into t (id) values ($1)", i) end
    ctx.log(ctx.db:scalar("select count(*) from pg_prepared_statements where statement like 'insert into t%'"))
    ctx.db:exec("alter table t add column note text default 'x'")
    for i = 6, 7 do ctx.db:exec("insert into t (id) values ($1)", i) end
    ctx.log(ctx.db:scalar("select count(*) from t where note = 'x'"))
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"1", "7"}));
  auto recs = records("sql");
  ASSERT_FALSE(recs.empty());
  EXPECT_EQ(recs[0]["executions"], 5);
}

}  // namespace

namespace {

TEST_F(Db, FingerprintIsAlsoAMethodOfTheConnection) {
  sql("create table t (id int primary key); insert into t values (1), (2)");
  auto o = run(R"lua(local fingerprint = require "fingerprint"
  runbook "t" { step "s" { run = function(ctx)
    local a = ctx.db:fingerprint{ schemas = { "public" } }
    ctx.log(tostring(a.digest == fingerprint.take(ctx.db).digest), #a.digest)
    ctx.db:exec("insert into t values (3)")
    ctx.log(table.concat(fingerprint.diff(a, ctx.db:fingerprint()), "; "))
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"true 64", "table t: 1 row more"}));
}

}  // namespace
