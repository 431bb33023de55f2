// stdlib guards against a real server: each says yes when all is well and no, with a reason,
// when it is not.
#include <gtest/gtest.h>

#include <thread>

#include "engine/db/connection.hpp"
#include "tests/support/db_helpers.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/runbook_test.hpp"

namespace rb {
namespace {

class Guards : public rb::testing::RunbookTest {
 protected:
  void SetUp() override { dsn = rb::testing::fresh_database("guards"); }
  /// Runs `guard_expr` (a guards.* call) in a step and returns what it said: "yes" or "no: reason".
  std::string verdict(const std::string& guard_expr) {
    auto o = run(R"lua(local guards = require "guards"
    runbook "t" { step "s" { run = function(ctx)
      local ok, why = )lua" + guard_expr + R"lua((ctx)
      ctx.log(ok and "yes" or ("no: " .. tostring(why)))
    end } })lua");
    EXPECT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
    auto lines = logged();
    return lines.empty() ? "" : lines.back();
  }
};

TEST_F(Guards, NoLongTransactionsSeesAnOldTransactionInThisDatabase) {
  EXPECT_EQ(verdict(R"(guards.no_long_transactions("5m"))"), "yes");
  auto old = rb::testing::connect(dsn, "old");
  old->begin();
  old->exec("select txid_current()");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the transaction's age is what is tested
  std::string v = verdict(R"(guards.no_long_transactions("1s"))");
  EXPECT_EQ(v.rfind("no: 1 transaction(s) open longer than 1s", 0), 0u) << v;
  old->rollback();
}

TEST_F(Guards, NoBlockingLocksSeesAWaitingSession) {
  EXPECT_EQ(verdict("guards.no_blocking_locks()"), "yes");
  auto holder = rb::testing::connect(dsn, "holder");
  holder->exec("create table t (id int)");
  holder->begin();
  holder->exec("lock table t in access exclusive mode");
  std::thread waiter([&] {
    auto w = rb::testing::connect(dsn, "waiter");
    try {
      w->exec("select count(*) from t");
    } catch (const std::exception&) {
    }
  });
  auto admin = rb::testing::connect(dsn, "admin");  // the holder's transaction would see a frozen pg_stat_activity
  for (int i = 0; i < 2000 && rb::testing::scalar(*admin, "select count(*) from pg_stat_activity where datname = "
                                                           "current_database() and wait_event_type = 'Lock'") != "1"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::string v = verdict("guards.no_blocking_locks()");
  holder->rollback();
  waiter.join();
  EXPECT_EQ(v, "no: 1 lock request(s) are waiting");
}

TEST_F(Guards, ReplicationLagIsFineWithoutReplicas) {
  EXPECT_EQ(verdict(R"(guards.replication_lag_below("30s"))"), "yes");
}

TEST_F(Guards, BloatBelowSeesDeadTuples) {
  auto c = rb::testing::connect(dsn);
  c->exec("create table churn (id int)");
  c->exec("insert into churn select generate_series(1, 1000)");
  c->exec("delete from churn where id <= 900");
  // the statistics collector reports dead tuples after the transaction's stats are flushed
  for (int i = 0; i < 100 && rb::testing::scalar(*c, "select coalesce(n_dead_tup, 0) from pg_stat_user_tables "
                                                      "where relname = 'churn'") == "0"; ++i) {
    c->exec("select pg_stat_force_next_flush()");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(verdict("guards.bloat_below(0.99)"), "yes");
  std::string v = verdict("guards.bloat_below(0.5)");
  EXPECT_EQ(v.rfind("no: table public.churn is 90% dead tuples", 0), 0u) << v;
}

TEST_F(Guards, BetweenIsAMaintenanceWindowInAZone) {
  auto c = rb::testing::connect(dsn);
  std::string hour = rb::testing::scalar(*c, "select to_char(now() at time zone 'Asia/Tokyo', 'HH24')");
  int h = std::stoi(hour);
  auto at = [](int x) { return (x < 10 ? "0" : "") + std::to_string(x) + ":00"; };
  // windows two hours wide, so the hour turning during the test changes nothing
  EXPECT_EQ(verdict("guards.between(\"" + at(h) + "\", \"" + at((h + 2) % 24) + "\", \"Asia/Tokyo\")"), "yes");
  std::string v = verdict("guards.between(\"" + at((h + 3) % 24) + "\", \"" + at((h + 4) % 24) + "\", \"Asia/Tokyo\")");
  EXPECT_EQ(v.rfind("no: outside the maintenance window", 0), 0u) << v;
  // a window crossing midnight that holds every hour but the next two
  EXPECT_EQ(verdict("guards.between(\"" + at((h + 22) % 24) + "\", \"" + at((h + 2) % 24) + "\", \"Asia/Tokyo\")"), "yes");
}

TEST_F(Guards, MaintenanceWindowIsOneStringOrAnyOrWhatTheParamsSay) {
  auto c = rb::testing::connect(dsn);
  int h = std::stoi(rb::testing::scalar(*c, "select to_char(now() at time zone 'Asia/Tokyo', 'HH24')"));
  auto at = [](int x) { return (x < 10 ? "0" : "") + std::to_string(x) + ":00"; };
  std::string inside = at(h) + "-" + at((h + 2) % 24), outside = at((h + 3) % 24) + "-" + at((h + 4) % 24);
  EXPECT_EQ(verdict("guards.maintenance_window(\"" + inside + "\", \"Asia/Tokyo\")"), "yes");
  std::string v = verdict("guards.maintenance_window(\"" + outside + "\", \"Asia/Tokyo\")");
  EXPECT_EQ(v.rfind("no: outside the maintenance window " + at((h + 3) % 24) + "-" + at((h + 4) % 24) + " Asia/Tokyo", 0), 0u)
      << v;
  EXPECT_EQ(verdict(R"(guards.maintenance_window("any"))"), "yes");
  // from a function of the run (its params), window and zone
  v = verdict("guards.maintenance_window(function() return \"" + outside + "\", \"Asia/Tokyo\" end)");
  EXPECT_EQ(v.rfind("no: outside the maintenance window", 0), 0u) << v;
  // a window that is no window raises: the guard is broken, not a no
  auto o = run(R"lua(local guards = require "guards"
    runbook "t" { step "s" { run = function(ctx) guards.maintenance_window("2am-4am")(ctx) end } })lua");
  EXPECT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_NE(o.error->describe().find("maintenance window '2am-4am' is not HH:MM-HH:MM or 'any'"), std::string::npos)
      << o.error->describe();
}

}  // namespace
}  // namespace rb
