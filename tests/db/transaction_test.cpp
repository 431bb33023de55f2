// Tests for engine/db/transaction and engine/db/savepoint against a real PostgreSQL: commit,
// rollback on destruction, failures at and before COMMIT, in-doubt commits, step savepoints.
#include "engine/db/transaction.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/db/savepoint.hpp"
#include "tests/support/db_helpers.hpp"
#include "tests/support/pg_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using rb::error_kind;
using rb::db::connection;
using rb::db::param;
using rb::db::savepoint;
using rb::db::sql_failure;
using rb::db::transaction;
using ::testing::HasSubstr;

using rb::testing::connect;
using rb::testing::failure_of;
using rb::testing::scalar;
using rb::testing::wait_until_gone;

class Transaction : public ::testing::Test {
 protected:
  void SetUp() override {
    dsn = rb::testing::fresh_database("transaction");
    db = connect(dsn);
    db->exec("create table t(id int primary key, v text)");
  }
  std::string count() { return scalar(*db, "select count(*) from t"); }
  std::string dsn;
  std::unique_ptr<connection> db;
};

TEST_F(Transaction, CommitKeepsTheWork) {
  {
    transaction tx(*db);
    EXPECT_TRUE(db->in_transaction());
    db->exec("insert into t values (1, 'a')");
    tx.commit();
    EXPECT_FALSE(tx.open());
  }
  EXPECT_FALSE(db->in_transaction());
  EXPECT_EQ(count(), "1");
}

TEST_F(Transaction, DestructorRollsBack) {
  {
    transaction tx(*db);
    db->exec("insert into t values (1, 'a')");
  }
  EXPECT_FALSE(db->in_transaction());
  EXPECT_EQ(count(), "0");
  {
    transaction tx(*db);
    db->exec("insert into t values (1, 'a')");
    tx.rollback();
    tx.rollback();  // idempotent
    EXPECT_FALSE(tx.open());
  }
  EXPECT_EQ(count(), "0");
}

TEST_F(Transaction, SecondBeginIsAUsageError) {
  transaction tx(*db);
  try {
    transaction nested(*db);
    FAIL() << "expected rb::error";
  } catch (const rb::error& e) {
    EXPECT_EQ(e.kind(), error_kind::usage);
    EXPECT_THAT(e.what(), HasSubstr("savepoint"));
  }
  EXPECT_TRUE(db->in_transaction());
}

TEST_F(Transaction, CommittingAFailedTransactionSaysItWasRolledBack) {
  transaction tx(*db);
  db->exec("insert into t values (1, 'a')");
  EXPECT_THROW(db->exec("insert into t values (1, 'again')"), sql_failure);
  auto aborted = failure_of([&] { db->exec("select 1"); });
  EXPECT_EQ(aborted.sqlstate(), "25P02");
  auto e = failure_of([&] { tx.commit(); });
  EXPECT_EQ(e.kind(), error_kind::sql);
  EXPECT_EQ(e.sqlstate(), "25P02");
  EXPECT_THAT(e.what(), HasSubstr("rolled it back"));
  EXPECT_FALSE(db->in_transaction());
  EXPECT_EQ(count(), "0");
}

TEST_F(Transaction, ErrorAtCommitIsReportedAndRollsBack) {
  db->exec("create table d(id int, constraint d_unique unique (id) deferrable initially deferred)");
  transaction tx(*db);
  db->exec("insert into d values (1)");
  db->exec("insert into d values (1)");  // checked only at COMMIT
  auto e = failure_of([&] { tx.commit(); });
  EXPECT_EQ(e.kind(), error_kind::sql);
  EXPECT_EQ(e.klass(), "unique_violation");
  EXPECT_EQ(e.detail(), "Key (id)=(1) already exists.");
  EXPECT_FALSE(db->in_transaction());
  EXPECT_EQ(scalar(*db, "select count(*) from d"), "0");
}

// Killed while idle in the transaction, before COMMIT is sent: libpq has the server's goodbye
// (FATAL 57P01) or the closed socket by then, so COMMIT never goes out and the outcome is known —
// rolled back. That is error_kind::connection, not in_doubt.
TEST_F(Transaction, BackendKilledBeforeCommitIsAConnectionErrorAndRolledBack) {
  auto admin = connect(dsn, "admin");
  transaction tx(*db);
  db->exec("insert into t values (1, 'a')");
  int pid = db->backend_pid();
  admin->exec("select pg_terminate_backend($1)", {std::to_string(pid)});
  wait_until_gone(*admin, pid);
  auto e = failure_of([&] { tx.commit(); });
  EXPECT_EQ(e.kind(), error_kind::connection);
  EXPECT_THAT(e.what(), HasSubstr("before COMMIT was sent"));
  EXPECT_THAT(e.what(), HasSubstr("rolled back"));
  EXPECT_FALSE(db->in_transaction());
  db->reconnect();
  EXPECT_EQ(count(), "0");
}

// Lost while COMMIT runs (here: a deferred trigger sleeps at commit and the backend is
// terminated meanwhile): whether it committed cannot be known from the client.
TEST_F(Transaction, ConnectionLostDuringCommitIsInDoubt) {
  db->script(R"sql(
    create function slow_commit() returns trigger language plpgsql as $$
    begin perform pg_sleep(5); return null; end $$;
    create constraint trigger slow after insert on t deferrable initially deferred
      for each row execute function slow_commit();
  )sql");
  auto admin = connect(dsn, "admin");
  transaction tx(*db);
  db->exec("insert into t values (1, 'a')");
  int pid = db->backend_pid();
  std::thread killer([&] {
    for (int i = 0; i < 500; ++i) {  // until COMMIT is running (its deferred trigger sleeps)
      if (scalar(*admin, "select count(*) from pg_stat_activity where pid = $1 and state = 'active'",
                 {std::to_string(pid)}) == "1")
        break;
      std::this_thread::sleep_for(10ms);
    }
    std::this_thread::sleep_for(50ms);
    admin->exec("select pg_terminate_backend($1)", {std::to_string(pid)});
  });
  auto t0 = std::chrono::steady_clock::now();
  auto e = failure_of([&] { tx.commit(); });
  killer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
  EXPECT_EQ(e.kind(), error_kind::in_doubt);
  EXPECT_EQ(e.klass(), "in_doubt");
  EXPECT_EQ(e.sqlstate(), "08007");
  EXPECT_THAT(e.what(), HasSubstr("may or may not have been committed"));
  EXPECT_FALSE(db->in_transaction());
  db->reconnect();
  EXPECT_EQ(count(), "0");  // here it did not (the trigger never finished); the client cannot know that
}

class Savepoint : public Transaction {};

TEST_F(Savepoint, RollbackUndoesOnlyTheStepsWorkAndTheTransactionContinues) {
  transaction tx(*db);
  db->exec("insert into t values (1, 'before')");
  {
    savepoint step(*db, "users");
    db->exec("insert into t values (2, 'in step')");
    step.rollback();
  }
  db->exec("insert into t values (3, 'after')");
  tx.commit();
  EXPECT_EQ(scalar(*db, "select string_agg(id::text, ',' order by id) from t"), "1,3");
}

TEST_F(Savepoint, RollsBackWhenTheStepFails) {
  transaction tx(*db);
  db->exec("insert into t values (1, 'kept')");
  try {
    savepoint step(*db, "failing step");
    db->exec("insert into t values (2, 'undone')");
    db->exec("insert into t values (1, 'duplicate')");  // fails: the transaction is aborted now
    step.release();
    FAIL() << "expected the step to fail";
  } catch (const sql_failure& e) {
    EXPECT_EQ(e.klass(), "unique_violation");
  }
  // The savepoint's destructor rolled back to it: the transaction is usable again.
  EXPECT_TRUE(db->in_transaction());
  db->exec("insert into t values (3, 'after')");
  tx.commit();
  EXPECT_EQ(scalar(*db, "select string_agg(id::text, ',' order by id) from t"), "1,3");
}

TEST_F(Savepoint, ReleaseKeepsTheWorkAndNestingWorks) {
  transaction tx(*db);
  {
    savepoint outer(*db, "outer");
    db->exec("insert into t values (1, 'outer')");
    {
      savepoint inner(*db, "inner");
      db->exec("insert into t values (2, 'inner')");
      inner.release();
    }
    {
      savepoint undone(*db, "undone");
      db->exec("insert into t values (3, 'undone')");
    }  // destroyed without release: rolled back
    outer.release();
    EXPECT_THROW(outer.release(), rb::error);  // released once
  }
  tx.commit();
  EXPECT_EQ(scalar(*db, "select string_agg(id::text, ',' order by id) from t"), "1,2");
}

TEST_F(Savepoint, AnyStepNameIsSafe) {
  const std::vector<std::string> names{
      "users",
      "step with spaces",
      "quote\"d",
      "it's",
      "\"; ROLLBACK; DROP TABLE t; --",
      "étape numéro 3 — ünïcode",
      std::string(80, 'x') + " long A",
      std::string(80, 'x') + " long B",     // distinct from A though both exceed 63 bytes
      std::string(49, 'a') + "éééééééééé",  // the cut falls inside a two-byte character
  };
  transaction tx(*db);
  int id = 0;
  for (const auto& name : names) {
    savepoint sp(*db, name);
    db->exec("insert into t values ($1, $2)", {std::to_string(++id), name});
    if (id % 2 == 0)
      sp.rollback();
    else
      sp.release();
  }
  // Savepoints with long names that share a prefix stay distinct.
  db->savepoint(names[6]);
  db->exec("insert into t values (100, 'a')");
  db->savepoint(names[7]);
  db->exec("insert into t values (101, 'b')");
  db->rollback_to(names[6]);  // undoes both
  db->release(names[6]);
  tx.commit();
  EXPECT_EQ(scalar(*db, "select string_agg(id::text, ',' order by id) from t"), "1,3,5,7,9");
  EXPECT_EQ(scalar(*db, "select v from t where id = 5"), names[4]);
  EXPECT_EQ(count(), "5");                  // the table survived its name
  EXPECT_TRUE(db->take_notices().empty());  // no "identifier will be truncated"
}

TEST_F(Savepoint, OutsideATransactionIsAUsageError) {
  try {
    savepoint sp(*db, "nowhere");
    FAIL() << "expected rb::error";
  } catch (const rb::error& e) {
    EXPECT_EQ(e.kind(), error_kind::usage);
  }
}

}  // namespace
