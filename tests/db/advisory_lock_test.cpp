// Tests for engine/db/advisory_lock against a real PostgreSQL: stable keys, a refused second
// run that names the holder, and release by unlock or by the holder's session ending.
#include "engine/db/advisory_lock.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <new>
#include <string>
#include <thread>

#include "tests/support/db_helpers.hpp"
#include "tests/support/pg_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using rb::error_kind;
using rb::db::connection;
using rb::db::run_lock;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using rb::testing::connect;
using rb::testing::scalar;

std::string host_name() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

/// The error a run_lock attempt threw, or a failure if it took the lock.
rb::error refusal(connection& c, const std::string& key, const std::string& run_id) {
  try {
    run_lock lock(c, key, run_id, "migration.centralized");
  } catch (const rb::error& e) {
    return e;
  }
  ADD_FAILURE() << "the lock was granted to " << run_id;
  return rb::error(error_kind::internal, "(granted)");
}

class RunLock : public ::testing::Test {
 protected:
  void SetUp() override { dsn = rb::testing::fresh_database("advisory_lock"); }
  std::string dsn;
};

TEST(AdvisoryKey, IsStableAcrossHostsAndVersions) {
  // The first 8 bytes of SHA-256("runbook-key"), big-endian, signed: fixed forever, since
  // runs on different hosts and releases must agree on it.
  EXPECT_EQ(rb::db::advisory_key("runbook-key"), -6790243070512236847LL);
  EXPECT_EQ(rb::db::advisory_key("migration.centralized@primary"),
            rb::db::advisory_key(std::string("migration.centralized@") + "primary"));
  EXPECT_NE(rb::db::advisory_key("migration.centralized@primary"),
            rb::db::advisory_key("migration.centralized@replica"));
}

TEST_F(RunLock, SecondSessionIsRefusedWithTheHolderNamed) {
  auto first = connect(dsn, "first");
  auto second = connect(dsn, "second");
  run_lock held(*first, "migration.centralized@primary", "20260101T000000Z-abc123", "migration.centralized");

  rb::error e = refusal(*second, "migration.centralized@primary", "20260101T000001Z-def456");
  EXPECT_EQ(e.kind(), error_kind::locked);
  EXPECT_EQ(e.exit_code(), rb::exit_codes::locked);
  std::string what = e.what();
  EXPECT_THAT(what, StartsWith("runbook 'migration.centralized' is already running on this target: run "
                               "20260101T000000Z-abc123 on "));
  EXPECT_THAT(what, HasSubstr(host_name()));
  EXPECT_THAT(what, HasSubstr("(pid " + std::to_string(::getpid()) + ", backend " +
                              std::to_string(first->backend_pid()) + ")"));
  EXPECT_THAT(what, HasSubstr(" since 20"));
  // The refused session does not keep describing itself as a holder.
  EXPECT_EQ(scalar(*second, "select current_setting('application_name')"), "runbook");

  // A different key is a different lock.
  EXPECT_NO_THROW(run_lock other(*second, "migration.centralized@replica", "r2", "migration.centralized"));
}

TEST_F(RunLock, HolderDescribesItselfInApplicationNameWithin63Bytes) {
  auto c = connect(dsn, "holder");
  const std::string long_run_id(80, 'r');
  {
    run_lock held(*c, "k", long_run_id, "rb");
    std::string app = scalar(*c, "select application_name from pg_stat_activity where pid = pg_backend_pid()");
    EXPECT_LE(app.size(), 63u);
    EXPECT_THAT(app, StartsWith("runbook:rrrr"));
    EXPECT_THAT(app, HasSubstr(":" + std::to_string(::getpid())));
  }
  EXPECT_EQ(scalar(*c, "select current_setting('application_name')"), "runbook");  // restored
}

TEST_F(RunLock, ReleasedByUnlockAndThenAvailableAgain) {
  auto first = connect(dsn, "first");
  auto second = connect(dsn, "second");
  { run_lock held(*first, "k", "run-1", "rb"); }
  EXPECT_NO_THROW(run_lock again(*second, "k", "run-2", "rb"));
  EXPECT_EQ(scalar(*first, "select count(*) from pg_locks where locktype = 'advisory' and database = "
                     "(select oid from pg_database where datname = current_database())"), "0");
}

TEST_F(RunLock, ReleasedWhenTheHoldersConnectionClosesWithoutUnlock) {
  auto second = connect(dsn, "second");
  {
    auto first = connect(dsn, "first");
    // Never destroyed, so never unlocked: only the session's end can release it. (Its
    // members need no cleanup: a reference, a key, and a short string.)
    alignas(run_lock) unsigned char storage[sizeof(run_lock)];
    new (storage) run_lock(*first, "k", "crashed-run", "rb");
    EXPECT_EQ(refusal(*second, "k", "run-2").kind(), error_kind::locked);
  }                                // the connection closes
  for (int i = 0; i < 100; ++i) {  // the backend exits asynchronously
    if (scalar(*second, "select count(*) from pg_locks where locktype = 'advisory' and database = "
                     "(select oid from pg_database where datname = current_database())") == "0") break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_NO_THROW(run_lock again(*second, "k", "run-2", "rb"));
}

TEST_F(RunLock, ReleasedWhenTheHoldersBackendIsKilled) {
  auto first = connect(dsn, "first");
  auto second = connect(dsn, "second");
  run_lock held(*first, "k", "run-1", "rb");
  int pid = first->backend_pid();
  second->exec("select pg_terminate_backend($1, 5000)", {std::to_string(pid)});  // waits for the exit
  EXPECT_NO_THROW(run_lock again(*second, "k", "run-2", "rb"));
  // held's destructor meets a dead session: it must not throw.
}

}  // namespace
