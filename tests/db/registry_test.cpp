// The schedule registry on a real server: migration, exactly-once claims under a race, outcomes.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <thread>

#include "engine/error.hpp"
#include "engine/schedule/registry.hpp"
#include "tests/support/db_helpers.hpp"
#include "tests/support/pg_fixture.hpp"

namespace rb::schedule {
namespace {

class Registry : public ::testing::Test {
 protected:
  void SetUp() override { dsn = rb::testing::fresh_database("registry"); }
  std::string dsn;
};

TEST_F(Registry, CreatesItsSchemaOnceAndRecordsTheVersion) {
  auto a = rb::testing::connect(dsn);
  registry first(*a);
  registry again(*a);  // already there: nothing to do
  EXPECT_EQ(rb::testing::scalar(*a, "select string_agg(version::text, ',') from runbook.schema_version"), "1,2");
  EXPECT_EQ(rb::testing::scalar(*a, "select count(*) from runbook.claims"), "0");
}

TEST_F(Registry, TwoSchedulersMigratingAtOnceBothSucceed) {
  std::barrier sync(2);
  std::atomic<int> ok{0};
  auto migrate = [&] {
    auto c = rb::testing::connect(dsn);
    sync.arrive_and_wait();
    try {
      registry r(*c);
      ++ok;
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  };
  std::thread t1(migrate), t2(migrate);
  t1.join();
  t2.join();
  EXPECT_EQ(ok.load(), 2);
  auto c = rb::testing::connect(dsn);
  EXPECT_EQ(rb::testing::scalar(*c, "select count(*) from runbook.schema_version"), "2");
}

TEST_F(Registry, RefusesASchemaNewerThanItKnows) {
  auto c = rb::testing::connect(dsn);
  { registry r(*c); }
  c->exec("insert into runbook.schema_version (version) values (99)");
  try {
    registry r(*c);
    FAIL() << "accepted a newer schema";
  } catch (const error& e) {
    EXPECT_EQ(e.kind(), error_kind::usage);
    EXPECT_NE(std::string(e.what()).find("version 99, newer than this runbook understands"), std::string::npos) << e.what();
  }
}

TEST_F(Registry, EachDueTimeIsClaimedExactlyOnceUnderARace) {
  { auto c = rb::testing::connect(dsn); registry r(*c); }
  constexpr int rounds = 200;
  std::barrier sync(2);
  std::atomic<int> wins[2] = {0, 0};
  auto scheduler = [&](int who) {
    auto c = rb::testing::connect(dsn);
    registry r(*c);
    for (int i = 0; i < rounds; ++i) {
      sync.arrive_and_wait();
      std::string due = "2026-12-03T03:" + std::string(i / 60 < 10 ? "0" : "") + std::to_string(i / 60) + ":" +
                        (i % 60 < 10 ? "0" : "") + std::to_string(i % 60) + "Z";
      try {
        if (r.try_claim("maintenance.daily", "primary", due, "host-" + std::to_string(who), 1000 + who)) ++wins[who];
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    }
  };
  std::thread a(scheduler, 0), b(scheduler, 1);
  a.join();
  b.join();
  EXPECT_EQ(wins[0] + wins[1], rounds) << "every due time ran once, no more, no less";
  auto c = rb::testing::connect(dsn);
  EXPECT_EQ(rb::testing::scalar(*c, "select count(*) from runbook.claims"), std::to_string(rounds));
}

TEST_F(Registry, ClaimsArePerRunbookTargetAndDueTime) {
  auto c = rb::testing::connect(dsn);
  registry r(*c);
  EXPECT_TRUE(r.try_claim("maintenance.daily", "primary", "2026-12-03T03:00:00Z", "h1", 1));
  EXPECT_FALSE(r.try_claim("maintenance.daily", "primary", "2026-12-03T03:00:00Z", "h2", 2));
  EXPECT_TRUE(r.try_claim("maintenance.daily", "replica", "2026-12-03T03:00:00Z", "h2", 2));
  EXPECT_TRUE(r.try_claim("maintenance.weekly", "primary", "2026-12-03T03:00:00Z", "h2", 2));
  // a dead claim (a scheduler killed mid-run) never blocks the next due time
  EXPECT_TRUE(r.try_claim("maintenance.daily", "primary", "2026-12-04T03:00:00Z", "h2", 2));
}

TEST_F(Registry, ARunningClaimBlocksTheNextDueTimeUntilItsSchedulersSessionIsGone) {
  auto first = rb::testing::connect(dsn);
  auto other = rb::testing::connect(dsn);
  auto admin = rb::testing::connect(dsn);
  registry a(*first), b(*other);
  ASSERT_TRUE(a.try_claim("maintenance.daily", "primary", "2026-12-03T03:00:00Z", "host-a", 11));
  a.started("maintenance.daily", "primary", "2026-12-03T03:00:00Z", "", 12);
  std::string busy;
  EXPECT_FALSE(b.try_claim("maintenance.daily", "primary", "2026-12-04T03:00:00Z", "host-b", 21, &busy));
  EXPECT_EQ(busy, "its run of 2026-12-03T03:00:00Z is still going (host host-a, pid 12)");
  EXPECT_TRUE(b.try_claim("maintenance.daily", "replica", "2026-12-04T03:00:00Z", "host-b", 21, &busy))
      << "another target is another entry";
  EXPECT_TRUE(b.recent("maintenance.daily").back().scheduler_alive);

  int backend = first->backend_pid();
  first.reset();  // the scheduler is gone (kill -9, a lost host): its session ends
  rb::testing::wait_until_gone(*admin, backend);
  EXPECT_TRUE(b.try_claim("maintenance.daily", "primary", "2026-12-04T03:00:00Z", "host-b", 21, &busy)) << busy;
  EXPECT_EQ(busy, "");
  auto claims = b.recent("maintenance.daily");
  ASSERT_EQ(claims.size(), 3u);
  const claim& lost = claims.back();  // newest due first: the 03rd is last
  EXPECT_EQ(lost.due, "2026-12-03T03:00:00Z");
  EXPECT_EQ(lost.status, "lost");
  EXPECT_EQ(lost.host, "host-a");
  EXPECT_EQ(lost.pid, 12);
  EXPECT_FALSE(lost.scheduler_alive);
  EXPECT_FALSE(lost.finished_at.empty());
}

TEST_F(Registry, ASessionLostUnderTheSchedulerIsOpenedAgainAndKeepsItsClaims) {
  auto conn = rb::testing::connect(dsn);
  auto other = rb::testing::connect(dsn);
  auto admin = rb::testing::connect(dsn);
  registry a(*conn), b(*other);
  ASSERT_TRUE(a.try_claim("maintenance.daily", "primary", "2026-12-03T03:00:00Z", "host-a", 11));
  a.started("maintenance.daily", "primary", "2026-12-03T03:00:00Z", "", 12);
  int backend = conn->backend_pid();
  admin->exec("select pg_terminate_backend($1::int)", {std::to_string(backend)});
  rb::testing::wait_until_gone(*admin, backend);
  // The next call opens a new session and carries the running claim over to it.
  EXPECT_TRUE(a.try_claim("maintenance.daily", "replica", "2026-12-03T03:00:00Z", "host-a", 11));
  EXPECT_NE(conn->backend_pid(), backend);
  std::string busy;
  EXPECT_FALSE(b.try_claim("maintenance.daily", "primary", "2026-12-04T03:00:00Z", "host-b", 21, &busy));
  EXPECT_EQ(busy, "its run of 2026-12-03T03:00:00Z is still going (host host-a, pid 12)");
  a.finished("maintenance.daily", "primary", "2026-12-03T03:00:00Z", "succeeded");
  EXPECT_EQ(rb::testing::scalar(*admin, "select status from runbook.claims where target = 'primary'"), "succeeded");
}

TEST_F(Registry, RecordsTheRunAndItsOutcome) {
  auto c = rb::testing::connect(dsn);
  registry r(*c);
  ASSERT_TRUE(r.try_claim("maintenance.daily", "primary", "2026-12-03T03:00:00Z", "db-host-1", 4242));
  r.started("maintenance.daily", "primary", "2026-12-03T03:00:00Z", "20261203T030000Z-ab12", 4343);
  auto running = r.recent("maintenance.daily");
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].status, "running");
  EXPECT_EQ(running[0].pid, 4343);
  EXPECT_EQ(running[0].host, "db-host-1");
  EXPECT_EQ(running[0].due, "2026-12-03T03:00:00Z");
  r.finished("maintenance.daily", "primary", "2026-12-03T03:00:00Z", "succeeded");
  auto done = r.recent();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].status, "succeeded");
  EXPECT_EQ(done[0].run_id, "20261203T030000Z-ab12");
  EXPECT_FALSE(done[0].finished_at.empty());
}

}  // namespace
}  // namespace rb::schedule
