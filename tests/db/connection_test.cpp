// Tests for engine/db/connection against a real PostgreSQL: parameters, types, errors and their
// classes, scripts and notices, streaming, timeouts, deadlines, lost sessions, DSN redaction.
#include "engine/db/connection.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/db/cursor.hpp"
#include "engine/db/sqlstate.hpp"
#include "tests/support/db_helpers.hpp"
#include "tests/support/pg_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using rb::error_kind;
using rb::db::connection;
using rb::db::param;
using rb::db::sql_failure;
using ::testing::HasSubstr;
using ::testing::Not;

using rb::testing::connect;
using rb::testing::failure_of;
using rb::testing::scalar;
using rb::testing::wait_until_gone;
using rb::testing::wait_until_running;

class Connection : public ::testing::Test {
 protected:
  void SetUp() override {
    dsn = rb::testing::fresh_database("connection");
    db = connect(dsn);
  }
  std::string dsn;
  std::unique_ptr<connection> db;
};

TEST_F(Connection, BindsParametersAndNeverSplicesThem) {
  db->exec("create table t(id serial primary key, v text)");
  const std::string evil = "'; DROP TABLE t; --";
  auto r = db->exec("insert into t(v) values ($1) returning v", {evil});
  EXPECT_EQ(r.rows.at(0).at(0).text, evil);
  EXPECT_EQ(scalar(*db, "select v from t where v = $1", {evil}), evil);
  EXPECT_EQ(scalar(*db, "select count(*) from t"), "1");  // the table survived
  // A parameter is one value, never SQL: a second statement cannot ride along either.
  auto e = failure_of([&] { db->exec("select 1; drop table t"); });
  EXPECT_EQ(e.sqlstate(), "42601");
  EXPECT_EQ(scalar(*db, "select count(*) from t"), "1");
}

TEST_F(Connection, BindsNullParametersAndReturnsNullFields) {
  db->exec("create table t(a text, b int)");
  db->exec("insert into t values ($1, $2)", {std::nullopt, "7"});
  db->exec("insert into t values ($1, $2)", {"", std::nullopt});
  auto r = db->exec("select a, b, a is null, b is null from t order by b nulls last");
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_TRUE(r.rows[0][0].null);
  EXPECT_EQ(r.rows[0][1].text, "7");
  EXPECT_EQ(r.rows[0][2].text, "t");
  EXPECT_FALSE(r.rows[1][0].null);  // the empty string is not NULL
  EXPECT_EQ(r.rows[1][0].text, "");
  EXPECT_TRUE(r.rows[1][1].null);
  EXPECT_EQ(r.rows[1][3].text, "t");
}

TEST_F(Connection, ReportsColumnNamesAndTypeOids) {
  auto r = db->exec(
      "select true as b, 2::int8 as big, 3::int4 as i, 1.5::numeric as n, '{\"a\":1}'::json as j, "
      "'{\"a\":1}'::jsonb as jb, 'x'::text as t, now() as ts, array[1,2] as arr");
  std::vector<std::pair<std::string, unsigned>> expected{
      {"b", 16}, {"big", 20}, {"i", 23}, {"n", 1700}, {"j", 114}, {"jb", 3802}, {"t", 25}, {"ts", 1184}, {"arr", 1007}};
  ASSERT_EQ(r.columns.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(r.columns[i].name, expected[i].first);
    EXPECT_EQ(r.columns[i].oid, expected[i].second) << expected[i].first;
  }
  EXPECT_EQ(r.rows[0][0].text, "t");
  EXPECT_EQ(r.rows[0][3].text, "1.5");
  EXPECT_EQ(r.rows[0][5].text, "{\"a\": 1}");
  EXPECT_EQ(r.rows[0][8].text, "{1,2}");
}

TEST_F(Connection, CountsAffectedRows) {
  db->exec("create table t(id int primary key, v text)");
  EXPECT_EQ(db->exec("insert into t values (1,'a'),(2,'b'),(3,'c')").affected, 3);
  EXPECT_EQ(db->exec("update t set v = 'z' where id >= $1", {"2"}).affected, 2);
  EXPECT_EQ(db->exec("delete from t where id = 1").affected, 1);
  EXPECT_EQ(db->exec("update t set v = 'q' where false").affected, 0);
  auto sel = db->exec("select * from t");
  EXPECT_EQ(sel.affected, 2);
  EXPECT_EQ(sel.rows.size(), 2u);
  auto ret = db->exec("insert into t values (9,'n') returning id");
  EXPECT_EQ(ret.affected, 1);
  EXPECT_EQ(ret.rows.at(0).at(0).text, "9");
}

TEST_F(Connection, ReadsErrorFieldsFromAServerThatSpeaksGerman) {
  // The messages are German (postgresql-15's translations, and the de_DE.UTF-8 locale that
  // scripts/setup generates); DETAIL and the names come from the error's fields, not its text.
  db->script("set lc_messages = 'de_DE.UTF-8'; create table parent(id int constraint parent_key primary key);"
             "insert into parent values (1)");
  for (bool script : {false, true}) {
    SCOPED_TRACE(script ? "script" : "exec");
    auto dup = failure_of([&] {
      if (script)
        db->script("insert into parent values (1)");
      else
        db->exec("insert into parent values ($1)", {"1"});
    });
    EXPECT_EQ(dup.sqlstate(), "23505");
    EXPECT_EQ(dup.klass(), "unique_violation");
    EXPECT_EQ(dup.detail(), "Schlüssel »(id)=(1)« existiert bereits.");
    EXPECT_EQ(dup.names().constraint, "parent_key");
    EXPECT_EQ(dup.names().table, "parent");
    EXPECT_EQ(dup.names().schema, "public");
    EXPECT_THAT(dup.what(), HasSubstr("on test database: doppelter Schlüsselwert verletzt Unique-Constraint "
                                      "»parent_key« (SQLSTATE 23505)"));
    EXPECT_THAT(dup.what(), Not(HasSubstr("FEHLER")));
  }
  auto raised = failure_of([&] {
    db->script("DO $$ BEGIN RAISE EXCEPTION 'step failed' USING DETAIL = 'the detail', HINT = 'the hint'; END $$");
  });
  EXPECT_EQ(raised.detail(), "the detail");
  EXPECT_EQ(raised.hint(), "the hint");
}

TEST_F(Connection, ClassifiesConstraintAndSchemaErrors) {
  db->script(
      "create table parent(id int primary key);"
      "create table child(id int primary key, parent_id int references parent(id), v text);"
      "insert into parent values (1);"
      "insert into child values (1, 1, 'a');");

  auto dup = failure_of([&] { db->exec("insert into parent values ($1)", {"1"}); });
  EXPECT_EQ(dup.kind(), error_kind::sql);
  EXPECT_EQ(dup.sqlstate(), "23505");
  EXPECT_EQ(dup.klass(), "unique_violation");
  EXPECT_EQ(dup.detail(), "Key (id)=(1) already exists.");
  EXPECT_EQ(dup.statement(), "insert into parent values ($1)");
  EXPECT_THAT(dup.what(), HasSubstr("unable to run SQL on test database: duplicate key value violates unique "
                                    "constraint \"parent_pkey\" (SQLSTATE 23505)"));
  EXPECT_THAT(dup.what(), HasSubstr("DETAIL: Key (id)=(1) already exists."));
  EXPECT_THAT(dup.what(), Not(HasSubstr("LOCATION")));

  auto fk = failure_of([&] { db->exec("insert into child values (2, 42, 'b')"); });
  EXPECT_EQ(fk.sqlstate(), "23503");
  EXPECT_EQ(fk.klass(), "foreign_key_violation");
  EXPECT_EQ(fk.detail(), "Key (parent_id)=(42) is not present in table \"parent\".");

  auto table = failure_of([&] { db->exec("select * from no_such_table"); });
  EXPECT_EQ(table.klass(), "undefined_table");
  EXPECT_THAT(table.what(), HasSubstr("relation \"no_such_table\" does not exist"));
  EXPECT_THAT(table.what(), HasSubstr("LINE 1: select * from no_such_table"));  // where, as psql shows it

  auto col = failure_of([&] { db->exec("select nope from child"); });
  EXPECT_EQ(col.sqlstate(), "42703");
  EXPECT_EQ(col.klass(), "undefined_column");

  auto conflict = failure_of([&] { db->exec("insert into child values (3, 1, 'c') on conflict (v) do nothing"); });
  EXPECT_EQ(conflict.sqlstate(), "42P10");
  EXPECT_EQ(conflict.klass(), "invalid_column_reference");

  auto dupcol = failure_of([&] { db->exec("create table twice(a int, a int)"); });
  EXPECT_EQ(dupcol.sqlstate(), "42701");
  EXPECT_EQ(dupcol.klass(), "duplicate_column");

  auto syntax = failure_of([&] { db->exec("selec 1"); });
  EXPECT_EQ(syntax.klass(), "syntax_error");

  auto raised = failure_of([&] {
    db->script("DO $$ BEGIN RAISE EXCEPTION 'step % failed', 3 USING DETAIL = 'the detail', HINT = 'the hint'; END $$");
  });
  EXPECT_EQ(raised.sqlstate(), "P0001");
  EXPECT_EQ(raised.klass(), "raise_exception");
  EXPECT_EQ(raised.detail(), "the detail");
  EXPECT_EQ(raised.hint(), "the hint");
  EXPECT_THAT(raised.what(), HasSubstr("step 3 failed"));
  EXPECT_THAT(raised.what(), HasSubstr("CONTEXT: PL/pgSQL function inline_code_block line 1 at RAISE"));

  // None of this broke the session.
  EXPECT_EQ(scalar(*db, "select count(*) from child"), "1");
}

TEST_F(Connection, ClassifiesInsufficientPrivilege) {
  // A predefined role with no rights on our table: creating a role would change the shared
  // server for every test that fingerprints its roles.
  db->script("create table secret(x int);");
  db->exec("set role pg_monitor");
  auto e = failure_of([&] { db->exec("select * from secret"); });
  EXPECT_EQ(e.sqlstate(), "42501");
  EXPECT_EQ(e.klass(), "insufficient_privilege");
  EXPECT_EQ(e.kind(), error_kind::sql);
  db->exec("reset role");
  EXPECT_EQ(scalar(*db, "select count(*) from secret"), "0");
}

TEST_F(Connection, ClassifiesLockNotAvailableFromNowaitAndLockTimeout) {
  db->script("create table t(id int primary key, v int); insert into t values (1, 0);");
  auto other = connect(dsn, "other session");
  db->begin();
  db->exec("select * from t where id = 1 for update");

  auto nowait = failure_of([&] { other->exec("select * from t where id = 1 for update nowait"); });
  EXPECT_EQ(nowait.sqlstate(), "55P03");
  EXPECT_EQ(nowait.klass(), "lock_not_available");
  EXPECT_EQ(nowait.kind(), error_kind::sql);  // NOWAIT is an answer, not a time limit

  other->set_lock_timeout(100ms);
  auto t0 = std::chrono::steady_clock::now();
  auto waited = failure_of([&] { other->exec("update t set v = 1 where id = 1"); });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_EQ(waited.sqlstate(), "55P03");
  EXPECT_EQ(waited.klass(), "lock_not_available");
  EXPECT_EQ(waited.kind(), error_kind::timeout);  // our lock_timeout
  EXPECT_THAT(waited.what(), HasSubstr("lock timeout"));
  db->rollback();
  EXPECT_EQ(other->exec("update t set v = 1 where id = 1").affected, 1);
}

TEST_F(Connection, ClassifiesSerializationFailureBetweenTwoSessions) {
  db->script("create table t(id int primary key, v int); insert into t values (1, 0);");
  auto other = connect(dsn, "other session");
  db->begin();
  db->exec("set transaction isolation level repeatable read");
  EXPECT_EQ(scalar(*db, "select v from t where id = 1"), "0");
  other->exec("update t set v = 1 where id = 1");
  auto e = failure_of([&] { db->exec("update t set v = 2 where id = 1"); });
  EXPECT_EQ(e.sqlstate(), "40001");
  EXPECT_EQ(e.klass(), "serialization_failure");
  EXPECT_EQ(e.kind(), error_kind::sql);
  db->rollback();
}

TEST_F(Connection, ClassifiesDeadlockBetweenTwoSessions) {
  db->script("create table t(id int primary key, v int); insert into t values (1, 0), (2, 0);");
  auto other = connect(dsn, "other session");
  auto admin = connect(dsn, "admin");
  int other_pid = std::stoi(scalar(*other, "select pg_backend_pid()"));
  for (auto* c : {db.get(), other.get()}) c->exec("set deadlock_timeout = '100ms'");
  db->begin();
  other->begin();
  db->exec("update t set v = 1 where id = 1");
  other->exec("update t set v = 2 where id = 2");
  std::optional<sql_failure> in_thread;
  std::thread blocked([&] {
    try {
      other->exec("update t set v = 2 where id = 1");  // waits for db
    } catch (const sql_failure& e) {
      in_thread = e;
    }
  });
  rb::testing::wait_until_blocked(*admin, other_pid);
  std::optional<sql_failure> here;
  try {
    db->exec("update t set v = 1 where id = 2");  // waits for other: a cycle
  } catch (const sql_failure& e) {
    here = e;
  }
  blocked.join();
  ASSERT_TRUE(here.has_value() != in_thread.has_value()) << "exactly one session is chosen as the victim";
  const sql_failure& e = here ? *here : *in_thread;
  EXPECT_EQ(e.sqlstate(), "40P01");
  EXPECT_EQ(e.klass(), "deadlock");
  EXPECT_FALSE(e.detail().empty());
  db->rollback();
  other->rollback();
}

TEST_F(Connection, ScriptRunsAMigrationAndCollectsItsNotices) {
  std::vector<rb::db::statement_record> records;
  db->on_statement([&](const rb::db::statement_record& r) { records.push_back(r); });
  db->script(R"sql(
    create table users(id int primary key, email text not null);
    insert into users values (1, 'a@example.com'), (2, 'b@example.com');
    DO $$
    DECLARE n int;
    BEGIN
      SELECT count(*) INTO n FROM users;
      RAISE NOTICE 'migrated % users', n;
      RAISE WARNING 'check the emails';
    END $$;
    create index users_email on users(email);
  )sql");
  EXPECT_EQ(scalar(*db, "select count(*) from users"), "2");
  auto notices = db->take_notices();
  EXPECT_EQ(notices, (std::vector<std::string>{"migrated 2 users", "WARNING: check the emails"}));
  EXPECT_TRUE(db->take_notices().empty());  // taken
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].notices, notices);  // the script's record carries them too
  EXPECT_TRUE(records[1].notices.empty());

  // A failing statement stops the script, and the error names the line.
  auto e = failure_of([&] { db->script("select 1;\nselect 2;\nselect * from nowhere;\nselect 4;"); });
  EXPECT_EQ(e.klass(), "undefined_table");
  EXPECT_THAT(e.what(), HasSubstr("LINE 3: select * from nowhere"));
  EXPECT_FALSE(db->in_transaction());
}

TEST_F(Connection, StreamsManyRowsInOrderInSmallBatches) {
  std::vector<rb::db::statement_record> records;
  db->on_statement([&](const rb::db::statement_record& r) { records.push_back(r); });
  long long count = 0, expected_next = 1;
  bool in_order = true;
  db->stream("select g, 'row ' || g as label, null::text as nothing from generate_series(1, $1::int) g order by g",
             {"200000"}, 500, [&](const std::vector<rb::db::column>& cols, const std::vector<rb::db::field>& row) {
               if (count == 0) {
                 EXPECT_EQ(cols.size(), 3u);
                 EXPECT_EQ(cols[0].name, "g");
                 EXPECT_EQ(cols[0].oid, 23u);
                 EXPECT_EQ(cols[1].name, "label");
                 EXPECT_TRUE(row[2].null);
               }
               in_order = in_order && row[0].text == std::to_string(expected_next);
               ++expected_next;
               ++count;
               return true;
             });
  EXPECT_EQ(count, 200000);
  EXPECT_TRUE(in_order);
  EXPECT_FALSE(db->in_transaction());  // the transaction it opened is closed
  EXPECT_EQ(scalar(*db, "select count(*) from pg_cursors where name <> ''"), "0");
  ASSERT_FALSE(records.empty());
  const auto& rec = records.front();  // one record for the whole stream
  EXPECT_EQ(rec.rows, 200000);
  EXPECT_EQ(rec.params, 1u);
  EXPECT_THAT(rec.sql, HasSubstr("generate_series"));
}

TEST_F(Connection, StreamStopsEarlyAndInsideAnOpenTransaction) {
  int seen = 0;
  db->stream("select g from generate_series(1, 100000) g", {}, 100, [&](const auto&, const auto& row) {
    EXPECT_EQ(row[0].text, std::to_string(seen + 1));
    return ++seen < 10;
  });
  EXPECT_EQ(seen, 10);
  EXPECT_FALSE(db->in_transaction());

  // Inside the caller's transaction it uses that transaction (and sees its uncommitted rows).
  db->begin();
  db->exec("create table t(x int)");
  db->exec("insert into t select generate_series(1, 25)");
  int rows = 0;
  db->stream("select x from t order by x;", {}, 7, [&](const auto&, const auto&) { return ++rows > 0; });
  EXPECT_EQ(rows, 25);
  EXPECT_TRUE(db->in_transaction());
  EXPECT_EQ(scalar(*db, "select count(*) from pg_cursors where name <> ''"), "0");
  db->rollback();

  // A callback that throws leaves no transaction or cursor behind.
  EXPECT_THROW(
      db->stream("select 1", {}, 10, [](const auto&, const auto&) -> bool { throw std::runtime_error("stop"); }),
      std::runtime_error);
  EXPECT_FALSE(db->in_transaction());
  EXPECT_EQ(scalar(*db, "select 1"), "1");

  // An error in the query itself is an ordinary SQL error.
  auto e =
      failure_of([&] { db->stream("select * from nowhere", {}, 10, [](const auto&, const auto&) { return true; }); });
  EXPECT_EQ(e.klass(), "undefined_table");
  EXPECT_FALSE(db->in_transaction());
}

TEST_F(Connection, CursorLeftEarlyIsClosedOnTheServerWithItsTransaction) {
  std::vector<rb::db::statement_record> records;
  db->on_statement([&](const rb::db::statement_record& r) { records.push_back(r); });
  {
    rb::db::cursor rows(*db, "select g from generate_series(1, 10) g order by g", {}, 3);
    ASSERT_NE(rows.next(), nullptr);
    const auto* second = rows.next();
    ASSERT_NE(second, nullptr);
    EXPECT_EQ((*second)[0].text, "2");
    EXPECT_TRUE(db->in_transaction());  // its own, open while it reads
    EXPECT_EQ(scalar(*db, "select count(*) from pg_cursors where name like 'rb_stream_%'"), "1");
  }  // dropped after two rows, never closed
  EXPECT_FALSE(db->in_transaction());
  EXPECT_EQ(scalar(*db, "select count(*) from pg_cursors where name <> ''"), "0");
  auto it = std::find_if(records.begin(), records.end(),
                         [](const auto& r) { return r.sql.find("generate_series") != std::string::npos; });
  ASSERT_NE(it, records.end());  // one record for the read, saying it did not finish
  EXPECT_EQ(it->error, "interrupted");
}

TEST_F(Connection, CursorReadsWholeBatchesToTheEndInsideTheCallersTransaction) {
  db->begin();
  db->exec("create table t(x int)");
  db->exec("insert into t select generate_series(1, 9)");
  rb::db::cursor rows(*db, "select x from t order by x", {}, 3);  // 9 rows: the 4th fetch is empty
  std::string seen;
  while (const auto* r = rows.next()) seen += (*r)[0].text;
  EXPECT_EQ(seen, "123456789");
  EXPECT_EQ(rows.delivered(), 9);
  EXPECT_FALSE(rows.is_open());
  ASSERT_EQ(rows.columns().size(), 1u);
  EXPECT_EQ(rows.columns()[0].name, "x");
  EXPECT_TRUE(db->in_transaction());  // the caller's, still open
  EXPECT_EQ(scalar(*db, "select count(*) from pg_cursors where name <> ''"), "0");
  db->rollback();
}

TEST_F(Connection, CursorThatFailsMidwayRollsBackItsOwnTransaction) {
  rb::db::cursor rows(*db, "select 1 / (g - 5) as v from generate_series(1, 10) g", {}, 2);
  int read = 0;
  auto e = failure_of([&] {
    while (rows.next()) ++read;
  });
  EXPECT_EQ(read, 4);  // rows 1-4 came in two batches; the third fetch reached g = 5
  EXPECT_EQ(e.sqlstate(), "22012");
  EXPECT_FALSE(rows.is_open());
  EXPECT_FALSE(db->in_transaction());
  EXPECT_EQ(rows.next(), nullptr);
  EXPECT_EQ(scalar(*db, "select count(*) from pg_cursors where name <> ''"), "0");
}

TEST_F(Connection, StatementTimeoutIsATimeoutAndTheSessionStaysUsable) {
  db->set_statement_timeout(150ms);
  auto t0 = std::chrono::steady_clock::now();
  auto e = failure_of([&] { db->exec("select pg_sleep(5)"); });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_EQ(e.sqlstate(), "57014");
  EXPECT_EQ(e.klass(), "query_canceled");
  EXPECT_EQ(e.kind(), error_kind::timeout);
  EXPECT_THAT(e.what(), HasSubstr("statement timeout"));
  EXPECT_EQ(scalar(*db, "select 41 + 1"), "42");
  db->set_statement_timeout(0ms);
  EXPECT_EQ(scalar(*db, "show statement_timeout"), "0");
}

TEST_F(Connection, TimeoutsAreSetOnceAndReappliedWhenARollbackUndoesThem) {
  std::vector<std::string> statements;
  db->on_statement([&](const rb::db::statement_record& r) { statements.push_back(r.sql); });
  db->set_statement_timeout(1234ms);
  db->set_lock_timeout(567ms);
  EXPECT_EQ(scalar(*db, "show statement_timeout"), "1234ms");
  EXPECT_EQ(scalar(*db, "show lock_timeout"), "567ms");
  // Not re-sent with every statement: a change behind its back survives the next statements.
  db->exec("set statement_timeout = 999");
  EXPECT_EQ(scalar(*db, "show statement_timeout"), "999ms");
  EXPECT_EQ(statements.size(), 4u);  // only the caller's statements are recorded

  // Set inside a transaction that is rolled back: PostgreSQL undoes the SET; it is re-applied.
  db->set_statement_timeout(0ms);
  EXPECT_EQ(scalar(*db, "show statement_timeout"), "0");
  db->begin();
  db->set_statement_timeout(2000ms);
  EXPECT_EQ(scalar(*db, "show statement_timeout"), "2s");
  db->rollback();
  EXPECT_EQ(scalar(*db, "show statement_timeout"), "2s");

  // The same for ROLLBACK TO SAVEPOINT.
  db->begin();
  db->savepoint("step");
  db->set_lock_timeout(3000ms);
  EXPECT_EQ(scalar(*db, "show lock_timeout"), "3s");
  db->rollback_to("step");
  EXPECT_EQ(scalar(*db, "show lock_timeout"), "3s");
  db->release("step");
  db->commit();
  EXPECT_EQ(scalar(*db, "show lock_timeout"), "3s");
  EXPECT_EQ(scalar(*db, "show statement_timeout"), "2s");
}

TEST_F(Connection, DeadlineCancelsTheRunningStatementAndTheSessionStaysUsable) {
  auto t0 = std::chrono::steady_clock::now();
  db->set_deadline(t0 + 300ms);
  auto e = failure_of([&] { db->exec("select pg_sleep(10)"); });
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(e.kind(), error_kind::timeout);
  EXPECT_EQ(e.sqlstate(), "57014");
  EXPECT_THAT(e.what(), HasSubstr("deadline"));

  // Past the deadline nothing new starts ...
  auto refused = failure_of([&] { db->exec("select 1"); });
  EXPECT_EQ(refused.kind(), error_kind::timeout);
  // ... and once it is lifted the session works: the cancelled result was read.
  db->set_deadline(std::nullopt);
  EXPECT_EQ(scalar(*db, "select 1"), "1");

  // Inside a transaction the cancelled statement fails it; recovery (ROLLBACK TO, RELEASE,
  // ROLLBACK) still runs past the deadline, which only stops new work.
  db->exec("create table t(x int)");
  db->begin();
  db->exec("insert into t values (1)");
  db->savepoint("step");
  db->set_deadline(std::chrono::steady_clock::now() + 200ms);
  EXPECT_EQ(failure_of([&] { db->exec("select pg_sleep(10)"); }).kind(), error_kind::timeout);
  db->rollback_to("step");
  db->release("step");
  EXPECT_EQ(failure_of([&] { db->commit(); }).kind(), error_kind::timeout);
  db->rollback();
  EXPECT_FALSE(db->in_transaction());
  db->set_deadline(std::nullopt);
  EXPECT_EQ(scalar(*db, "select count(*) from t"), "0");

  // A far deadline does not disturb quick statements.
  db->set_deadline(std::chrono::steady_clock::now() + 60s);
  EXPECT_EQ(scalar(*db, "select 3"), "3");
}

TEST_F(Connection, CancelFromAnotherThreadIsCancelled) {
  auto admin = connect(dsn, "admin");
  int pid = db->backend_pid();
  std::thread canceller([&] {
    wait_until_running(*admin, pid, "select pg_sleep(10)");
    db->cancel();
  });
  auto e = failure_of([&] { db->exec("select pg_sleep(10)"); });
  canceller.join();
  EXPECT_EQ(e.kind(), error_kind::cancelled);
  EXPECT_EQ(e.sqlstate(), "57014");
  db->cancel();  // nothing running: nothing happens
  EXPECT_EQ(scalar(*db, "select 1"), "1");
}

TEST_F(Connection, KilledBackendIsAConnectionErrorAndReconnectWorks) {
  auto admin = connect(dsn, "admin");
  db->exec("create table t(x int)");
  int pid = db->backend_pid();
  admin->exec("select pg_terminate_backend($1)", {std::to_string(pid)});
  wait_until_gone(*admin, pid);

  auto e = failure_of([&] { db->exec("select 1"); });
  EXPECT_EQ(e.kind(), error_kind::connection);
  EXPECT_EQ(e.klass(), "connection");
  EXPECT_EQ(e.sqlstate(), "57P01");
  EXPECT_THAT(e.what(), HasSubstr("terminating connection due to administrator command"));
  EXPECT_FALSE(db->is_open());
  EXPECT_EQ(failure_of([&] { db->exec("select 1"); }).kind(), error_kind::connection);

  db->reconnect();
  EXPECT_TRUE(db->is_open());
  EXPECT_NE(db->backend_pid(), pid);
  EXPECT_EQ(scalar(*db, "select 1"), "1");

  // A transaction open when its session dies is gone; it is never assumed committed.
  db->begin();
  db->exec("insert into t values (1)");
  pid = db->backend_pid();
  admin->exec("select pg_terminate_backend($1)", {std::to_string(pid)});
  wait_until_gone(*admin, pid);
  EXPECT_EQ(failure_of([&] { db->exec("insert into t values (2)"); }).kind(), error_kind::connection);
  EXPECT_TRUE(db->in_transaction());  // until the caller resolves it
  db->reconnect();
  auto lost = failure_of([&] { db->exec("insert into t values (3)"); });  // not on the new session, silently
  EXPECT_EQ(lost.kind(), error_kind::connection);
  auto commit = failure_of([&] { db->commit(); });
  EXPECT_EQ(commit.kind(), error_kind::connection);
  EXPECT_THAT(commit.what(), HasSubstr("rolled back"));
  EXPECT_FALSE(db->in_transaction());
  EXPECT_EQ(scalar(*db, "select count(*) from t"), "0");
}

TEST_F(Connection, TracksTransactionsOpenedOrEndedByTheSqlItself) {
  db->exec("create table t(x int)");
  db->exec("begin");
  db->exec("insert into t values (1)");
  EXPECT_TRUE(db->in_transaction());
  EXPECT_TRUE(db->transaction_begun_by_sql());
  db->exec("commit");
  EXPECT_FALSE(db->in_transaction());
  db->script("begin; insert into t values (2);");
  EXPECT_TRUE(db->in_transaction());
  db->rollback();
  EXPECT_FALSE(db->in_transaction());
  EXPECT_EQ(scalar(*db, "select string_agg(x::text, ',') from t"), "1");
  // A transaction begin() opened belongs to its caller: SQL may not end it.
  db->begin();
  db->exec("insert into t values (3)");
  auto e = failure_of([&] { db->exec("commit"); });
  EXPECT_EQ(e.sqlstate(), "2D000");
  EXPECT_TRUE(db->in_transaction());
  db->rollback();
  EXPECT_EQ(scalar(*db, "select string_agg(x::text, ',') from t"), "1");
}

TEST_F(Connection, OnStatementRecordsTextParamCountAndErrorsButNeverValues) {
  std::vector<rb::db::statement_record> records;
  db->on_statement([&](const rb::db::statement_record& r) { records.push_back(r); });
  db->exec("create table t(id int primary key, secret text)");
  db->exec("insert into t values ($1, $2)", {"1", "s3cr3t-value"});
  EXPECT_THROW(db->exec("insert into t values ($1, $2)", {"1", "s3cr3t-value"}), sql_failure);
  db->begin();
  db->savepoint("step one");
  db->release("step one");
  db->commit();

  ASSERT_EQ(records.size(), 7u);
  EXPECT_EQ(records[1].sql, "insert into t values ($1, $2)");
  EXPECT_EQ(records[1].params, 2u);
  EXPECT_EQ(records[1].rows, 1);
  EXPECT_TRUE(records[1].sqlstate.empty());
  EXPECT_TRUE(records[1].error.empty());
  EXPECT_EQ(records[2].sqlstate, "23505");
  EXPECT_THAT(records[2].error, HasSubstr("duplicate key"));
  EXPECT_EQ(records[3].sql, "BEGIN");
  EXPECT_EQ(records[4].sql, "SAVEPOINT \"step one\"");
  EXPECT_EQ(records[5].sql, "RELEASE SAVEPOINT \"step one\"");
  EXPECT_EQ(records[6].sql, "COMMIT");
  for (const auto& r : records) {
    EXPECT_THAT(r.sql, Not(HasSubstr("s3cr3t")));
    EXPECT_THAT(r.error, Not(HasSubstr("s3cr3t")));
    EXPECT_GE(r.duration.count(), 0);
  }
}

TEST(ConnectionFailure, NeverShowsThePassword) {
  for (const std::string dsn :
       {"host=/nonexistent port=5432 user=postgres password=hunter2secret",
        "host=/nonexistent password='hunter2 secret'", "host=/nonexistent password=hunter2 secret",
        "postgresql://postgres:hunter2secret@%2Fnonexistent/db", "postgresql://postgres:hunter2secret@[::1/db"}) {
    rb::db::connection_options o;
    o.dsn = dsn;
    o.name = "target 'primary'";
    try {
      connection c(o);
      ADD_FAILURE() << "connected to " << dsn;
    } catch (const sql_failure& e) {
      EXPECT_EQ(e.kind(), error_kind::connection) << dsn;
      EXPECT_EQ(e.klass(), "connection");
      EXPECT_THAT(e.what(), HasSubstr("unable to connect to target 'primary'"));
      EXPECT_THAT(e.what(), Not(HasSubstr("hunter2"))) << e.what();
      EXPECT_THAT(e.what(), Not(HasSubstr("secret"))) << e.what();
    }
  }
}

TEST(ConnectionFailure, WrongPasswordIsAConnectionErrorWithoutThePassword) {
  auto& cluster = rb::testing::private_cluster();  // its pg_hba.conf is rewritten
  std::string base = "host=" + cluster.socket_dir().string() + " port=" + std::to_string(cluster.port()) +
                     " dbname=postgres user=rb_pw_user";
  {
    auto admin = connect(cluster.dsn("postgres"));
    admin->script(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rb_pw_user') THEN "
        "CREATE ROLE rb_pw_user LOGIN PASSWORD 'correct-horse'; END IF; END $$;");
    // This role (only) must give a password: put the rule first in pg_hba.conf.
    auto hba = cluster.data_dir() / "pg_hba.conf";
    std::string content;
    {
      std::ifstream in(hba);
      content.assign(std::istreambuf_iterator<char>(in), {});
    }
    if (content.find("rb_pw_user") == std::string::npos) {
      std::ofstream(hba) << "local all rb_pw_user scram-sha-256\n" << content;
      admin->exec("select pg_reload_conf()");
    }
  }
  // The server reloads its configuration in the background: until it asks for a password.
  bool asks = false;
  for (int i = 0; i < 1000 && !asks; ++i) {
    try {
      connect(base);
      std::this_thread::sleep_for(10ms);
    } catch (const sql_failure&) {
      asks = true;
    }
  }
  ASSERT_TRUE(asks) << "the server never asked rb_pw_user for a password";
  try {
    rb::db::connection_options o;
    o.dsn = base + " password=hunter2secret";
    connection c(o);
    ADD_FAILURE() << "connected with a wrong password";
  } catch (const sql_failure& e) {
    EXPECT_EQ(e.kind(), error_kind::connection);
    EXPECT_THAT(e.what(), HasSubstr("password authentication failed"));
    EXPECT_THAT(e.what(), HasSubstr("password=***"));
    EXPECT_THAT(e.what(), Not(HasSubstr("hunter2secret")));
  }
  auto ok = connect(base + " password=correct-horse");
  EXPECT_EQ(scalar(*ok, "select current_user"), "rb_pw_user");
  EXPECT_THAT(ok->redacted_dsn(), HasSubstr("password=***"));
  EXPECT_THAT(ok->redacted_dsn(), Not(HasSubstr("correct-horse")));
}

TEST(Dsn, RedactsKeywordAndUriForms) {
  // Read by libpq's parser; a DSN with a secret comes back as its settings in keyword/value form.
  using rb::db::redact_dsn;
  EXPECT_EQ(redact_dsn("host=db1 user=app password=s3cret dbname=prod"), "user=app password=*** dbname=prod host=db1");
  EXPECT_EQ(redact_dsn("password = 's3 cr\\'et' host=db1"), "password=*** host=db1");
  EXPECT_EQ(redact_dsn("host=db1 sslpassword=keypass"), "host=db1 sslpassword=***");
  EXPECT_EQ(redact_dsn("host=db1 password=hunter 2secret"), "***");  // unreadable: nothing shown
  EXPECT_EQ(redact_dsn("host=db1 user=app"), "host=db1 user=app");
  EXPECT_EQ(redact_dsn(""), "");
  EXPECT_EQ(redact_dsn("postgresql://app:s3cret@db1:5432/prod?sslmode=require"),
            "user=app password=*** dbname=prod host=db1 port=5432 sslmode=require");
  EXPECT_EQ(redact_dsn("postgres://app:p%40ss@db1/prod"), "user=app password=*** dbname=prod host=db1");
  EXPECT_EQ(redact_dsn("postgresql://app@db1/prod?password=s3cret&application_name=x"),
            "user=app password=*** dbname=prod host=db1 application_name=x");
  EXPECT_EQ(redact_dsn("postgresql://db1/prod"), "postgresql://db1/prod");
  EXPECT_EQ(redact_dsn("postgresql://app@db1/prod"), "postgresql://app@db1/prod");
  EXPECT_EQ(redact_dsn("dbname='host=db1 password=inner' user=app"), "user=app dbname='password=*** host=db1'");
  EXPECT_EQ(redact_dsn("host=db1 application_name='a b'"), "host=db1 application_name='a b'");
}

TEST(Dsn, AnUnreadableDsnSaysWhyWithoutItsPassword) {
  try {
    rb::db::parse_dsn("host=db1 password=hunter 2secret");
    ADD_FAILURE() << "parsed";
  } catch (const rb::error& e) {
    EXPECT_EQ(e.kind(), error_kind::usage);
    EXPECT_THAT(e.what(), HasSubstr("unable to read the connection string: missing \"=\" after \"***\""));
    EXPECT_THAT(e.what(), Not(HasSubstr("2secret")));
  }
  try {
    rb::db::parse_dsn("host=db1 pasword=x");
    ADD_FAILURE() << "parsed";
  } catch (const rb::error& e) {
    EXPECT_THAT(e.what(), HasSubstr("invalid connection option \"***\""));
  }
  auto c = failure_of([] { connection c(rb::db::connection_options{.dsn = "password='open quote"}); });
  EXPECT_EQ(c.kind(), error_kind::connection);
  EXPECT_THAT(c.what(), HasSubstr("unterminated quoted string"));
  EXPECT_THAT(c.what(), Not(HasSubstr("open quote")));
}

TEST(Dsn, GivesEnvironmentAndAPasswordlessForm) {
  using rb::db::dsn_without_password;
  using rb::db::libpq_env;
  auto env = libpq_env("postgresql://app:p%40ss@db1:5433/prod?sslmode=require");
  EXPECT_EQ(env, (std::map<std::string, std::string>{{"PGUSER", "app"},
                                                     {"PGPASSWORD", "p@ss"},
                                                     {"PGDATABASE", "prod"},
                                                     {"PGHOST", "db1"},
                                                     {"PGPORT", "5433"},
                                                     {"PGSSLMODE", "require"}}));
  EXPECT_EQ(dsn_without_password("postgresql://app:p%40ss@db1/my%20db"), "user=app dbname='my db' host=db1");
  EXPECT_EQ(dsn_without_password("host=db1 password=x"), "host=db1");
}

TEST(Dsn, FindsThePasswordToRegisterAsASecret) {
  using rb::db::dsn_password;
  EXPECT_EQ(dsn_password("host=db1 password=s3cret"), "s3cret");
  EXPECT_EQ(dsn_password("password='a b\\'c'"), "a b'c");
  EXPECT_EQ(dsn_password("password=first password=second"), "second");  // libpq: the last wins
  EXPECT_EQ(dsn_password("host=db1 sslpassword=key"), std::nullopt);
  EXPECT_EQ(dsn_password("postgresql://app:p%40ss@db1/prod"), "p@ss");
  EXPECT_EQ(dsn_password("postgresql://app@db1/prod?password=q%20r"), "q r");
  EXPECT_EQ(dsn_password("postgresql://app@db1/prod"), std::nullopt);
  EXPECT_EQ(dsn_password("host=db1"), std::nullopt);
}

TEST(Dsn, APasswordIsOverwrittenInPlace) {
  using rb::db::redact_dsn_in_place;
  char kv[] = "host=db1 password=s3cret-pw dbname=prod";
  EXPECT_TRUE(redact_dsn_in_place(kv));
  EXPECT_STREQ(kv, "password=*** dbname=prod host=db1");
  for (std::size_t i = std::strlen(kv); i < sizeof kv; ++i) EXPECT_EQ(kv[i], '\0');
  char uri[] = "postgresql://app:s3cret@db1/prod";  // its keyword form, cut to fit
  EXPECT_TRUE(redact_dsn_in_place(uri));
  EXPECT_STREQ(uri, "user=app password=*** dbname=pro");
  char unreadable[] = "host=db1 password=hunter 2secret";
  EXPECT_TRUE(redact_dsn_in_place(unreadable));
  EXPECT_STREQ(unreadable, "***");
  char tiny[] = "host=db1 password=ab";
  EXPECT_TRUE(redact_dsn_in_place(tiny));
  EXPECT_STREQ(tiny, "password=*** host=db");
  char none[] = "host=db1 dbname=prod";
  EXPECT_FALSE(redact_dsn_in_place(none));
  EXPECT_STREQ(none, "host=db1 dbname=prod");
}

TEST(Sqlstate, MapsCodesToClassesAndKinds) {
  using rb::db::class_for_sqlstate;
  using rb::db::kind_for_sqlstate;
  EXPECT_EQ(class_for_sqlstate("23505"), "unique_violation");
  EXPECT_EQ(class_for_sqlstate("40P01"), "deadlock");
  EXPECT_EQ(class_for_sqlstate("08006"), "connection");
  EXPECT_EQ(class_for_sqlstate("08001"), "connection");
  EXPECT_EQ(class_for_sqlstate("57P01"), "admin_shutdown");
  EXPECT_EQ(class_for_sqlstate("P0001"), "raise_exception");
  EXPECT_EQ(class_for_sqlstate("XX000"), "sql_error");
  EXPECT_EQ(class_for_sqlstate(""), "sql_error");
  EXPECT_EQ(kind_for_sqlstate("08006"), error_kind::connection);
  EXPECT_EQ(kind_for_sqlstate("57P01"), error_kind::connection);
  EXPECT_EQ(kind_for_sqlstate("57014"), error_kind::timeout);
  EXPECT_EQ(kind_for_sqlstate("23505"), error_kind::sql);
  sql_failure doubt(error_kind::in_doubt, "m", "08007", "", "", "COMMIT");
  EXPECT_EQ(doubt.klass(), "in_doubt");
}

}  // namespace

TEST(Dsn, AddsASettingThatLibpqReadsBackInBothForms) {
  // A value with a space, a quote and a backslash, as keyword=value and as a URI parameter.
  const std::string app = "ops run 'x' \\1";
  for (std::string dsn : {"host=/tmp dbname=app", "postgresql://ops@localhost/app?sslmode=disable"}) {
    std::string with = rb::db::dsn_with(dsn, "application_name", app);
    std::string found;
    for (const auto& s : rb::db::parse_dsn(with))
      if (s.keyword == "application_name") found = s.value;
    EXPECT_EQ(found, app) << with;
  }
}
