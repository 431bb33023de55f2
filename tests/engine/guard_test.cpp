// Guards on a runbook and on a phase: a no skips (the run, or the phase), a raise fails, each
// guard asked is audited with its reason; stdlib guards against a real server.
#include <gtest/gtest.h>

#include <thread>

#include "engine/error.hpp"
#include "tests/support/db_helpers.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/runbook_test.hpp"

namespace rb {
namespace {

class Guard : public rb::testing::RunbookTest {};

TEST_F(Guard, ARunbookGuardThatSaysNoSkipsTheRunAndNothingRuns) {
  auto o = run(R"lua(runbook "t" {
    guard = function(ctx) return false, "not today" end,
    step "s" { run = function(ctx) ctx.log("the step ran") end },
  })lua");
  EXPECT_EQ(o.status, "skipped");
  EXPECT_EQ(o.exit_code(), 0);
  EXPECT_EQ(o.skip_reason, "not today");
  EXPECT_EQ(o.to_json().value("skip_reason", ""), "not today");
  EXPECT_TRUE(records("step.start").empty());
  EXPECT_TRUE(records("phase.start").empty());
  EXPECT_TRUE(logged().empty());
  auto g = records("guard");
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0]["scope"], "runbook");
  EXPECT_EQ(g[0]["index"], 1);
  EXPECT_EQ(g[0]["ok"], false);
  EXPECT_EQ(g[0]["reason"], "not today");
  auto end = records("run.end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]["status"], "skipped");
  EXPECT_EQ(end[0]["skip_reason"], "not today");
  EXPECT_NE(output.str().find("guard 1 of 1 said no: not today"), std::string::npos) << output.str();
}

TEST_F(Guard, TheFirstGuardOfAListThatSaysNoDecidesAndLaterOnesAreNotAsked) {
  auto o = run(R"lua(runbook "t" {
    guard = {
      function(ctx) ctx.log("first asked") return true end,
      function(ctx) return false, "second says no" end,
      function(ctx) ctx.log("third asked") return true end,
    },
    step "s" { run = function(ctx) ctx.log("the step ran") end },
  })lua");
  EXPECT_EQ(o.status, "skipped");
  EXPECT_EQ(o.skip_reason, "second says no");
  EXPECT_EQ(logged(), std::vector<std::string>{"first asked"});
  auto g = records("guard");
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0]["ok"], true);
  EXPECT_EQ(g[0]["of"], 3);
  EXPECT_EQ(g[1]["index"], 2);
  EXPECT_EQ(g[1]["ok"], false);
  EXPECT_EQ(g[1]["reason"], "second says no");
}

TEST_F(Guard, GuardsThatSayYesLetTheRunGoOn) {
  auto o = run(R"lua(runbook "t" {
    guard = { function(ctx) return true end, function(ctx) return ctx.runbook == "t", "wrong runbook" end },
    step "s" { run = function(ctx) ctx.log("the step ran") end },
  })lua");
  EXPECT_EQ(o.status, "succeeded");
  EXPECT_EQ(logged(), std::vector<std::string>{"the step ran"});
  EXPECT_EQ(records("guard").size(), 2u);
}

TEST_F(Guard, APhaseGuardThatSaysNoSkipsThatPhaseAndTheRunGoesOn) {
  auto o = run(R"lua(runbook "t" {
    phase "one" { step "a" { run = function(ctx) ctx.log("a ran") end } },
    phase "two" {
      guard = function(ctx) return false, "not in this phase" end,
      step "b" { run = function(ctx) ctx.log("b ran") end },
    },
    phase "three" { step "c" { run = function(ctx) ctx.log("c ran") end } },
  })lua");
  EXPECT_EQ(o.status, "succeeded");
  EXPECT_EQ(logged(), (std::vector<std::string>{"a ran", "c ran"}));
  auto g = records("guard");
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0]["scope"], "phase");
  EXPECT_EQ(g[0]["phase"], "two");
  EXPECT_EQ(g[0]["reason"], "not in this phase");
  bool seen = false;
  for (const auto& e : records("phase.end"))
    if (e["phase"] == "two") {
      seen = true;
      EXPECT_EQ(e["status"], "skipped");
      EXPECT_EQ(e["reason"], "not in this phase");
    }
  EXPECT_TRUE(seen);
}

TEST_F(Guard, AGuardThatRaisesFailsTheRunItIsNoNo) {
  auto o = run(R"lua(runbook "t" {
    guard = function(ctx) error("the guard is broken") end,
    step "s" { run = function(ctx) ctx.log("the step ran") end },
  })lua");
  EXPECT_EQ(o.status, "failed");
  EXPECT_NE(o.exit_code(), 0);
  ASSERT_TRUE(o.error);
  EXPECT_NE(o.error->message.find("the guard is broken"), std::string::npos) << o.error->message;
  EXPECT_EQ(o.failed_step, "guard 1 of 1");
  EXPECT_TRUE(logged().empty());
  auto g = records("guard");
  ASSERT_EQ(g.size(), 1u);
  EXPECT_TRUE(g[0]["ok"].is_null());
  EXPECT_NE(g[0]["error"]["message"].get<std::string>().find("the guard is broken"), std::string::npos);
}

TEST_F(Guard, AGuardThatReturnsNoBooleanIsBrokenNotANo) {
  auto o = run(R"lua(runbook "t" {
    guard = function(ctx) end,
    step "s" { run = function(ctx) ctx.log("the step ran") end },
  })lua");
  EXPECT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_NE(o.error->message.find("guard 1 returned nothing; a guard returns true, or false and a reason"),
            std::string::npos) << o.error->message;
  EXPECT_TRUE(logged().empty());
}

TEST_F(Guard, APhaseGuardThatRaisesRollsBackTheEarlierPhases) {
  auto o = run(R"lua(runbook "t" {
    phase "one" { step "a" { run = function(ctx) ctx.log("a ran") end, rollback = function(ctx) ctx.log("a undone") end } },
    phase "two" {
      guard = function(ctx) error("cannot tell") end,
      step "b" { run = function(ctx) ctx.log("b ran") end },
    },
  })lua");
  EXPECT_EQ(o.status, "rolled_back");
  EXPECT_EQ(o.failed_step, "two (guard 1 of 1)");
  EXPECT_EQ(logged(), (std::vector<std::string>{"a ran", "a undone"}));
}

TEST_F(Guard, AGuardThatIsNotAFunctionIsRefusedWithFileAndLine) {
  try {
    run(R"lua(runbook "t" {
      guard = { function(ctx) return true end, "no_blocking_locks" },
      step "s" { run = function(ctx) end },
    })lua");
    FAIL() << "loaded";
  } catch (const error& e) {
    EXPECT_EQ(e.kind(), error_kind::bad_runbook);
    std::string m = e.what();
    EXPECT_NE(m.find("t.lua:1: runbook 't': guard 2 is a string, not a function"), std::string::npos) << m;
  }
  try {
    run(R"lua(runbook "t" {
      phase "p" { guard = true, step "s" { run = function(ctx) end } },
    })lua");
    FAIL() << "loaded";
  } catch (const error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("t.lua:2: phase 'p': 'guard' must be a function(ctx) returning ok, reason"), std::string::npos) << m;
  }
}

class GuardOnDatabase : public rb::testing::RunbookTest {
 protected:
  void SetUp() override { dsn = rb::testing::fresh_database("guard_run"); }
};

TEST_F(GuardOnDatabase, StatementsOfAGuardAreAuditedAsTheGuards) {
  auto o = run(R"lua(runbook "t" {
    guard = function(ctx) return ctx.db:scalar("select 41 + 1") == 42, "arithmetic" end,
    step "s" { run = function(ctx) ctx.log("ran") end },
  })lua");
  EXPECT_EQ(o.status, "succeeded");
  bool seen = false;
  for (const auto& r : records("sql"))
    if (r["sql"] == "select 41 + 1") {
      seen = true;
      EXPECT_EQ(r["step"], "guard 1");
    }
  EXPECT_TRUE(seen);
}

TEST_F(GuardOnDatabase, BetweenOutsideItsWindowSkipsTheRun) {
  auto c = rb::testing::connect(dsn);
  int h = std::stoi(rb::testing::scalar(*c, "select to_char(now() at time zone 'UTC', 'HH24')"));
  auto at = [](int x) { return (x < 10 ? "0" : "") + std::to_string(x) + ":00"; };
  // three hours ahead, an hour wide: the hour turning during the test changes nothing
  auto o = run("local guards = require \"guards\"\n"
               "runbook \"t\" {\n"
               "  guard = { guards.between(\"" + at((h + 3) % 24) + "\", \"" + at((h + 4) % 24) + "\") },\n"
               "  step \"s\" { run = function(ctx) ctx.log(\"ran\") end },\n"
               "}\n");
  EXPECT_EQ(o.status, "skipped");
  EXPECT_EQ(o.skip_reason.rfind("outside the maintenance window " + at((h + 3) % 24), 0), 0u) << o.skip_reason;
  EXPECT_TRUE(logged().empty());
  auto inside = run("local guards = require \"guards\"\n"
                    "runbook \"t\" {\n"
                    "  guard = guards.between(\"" + at(h) + "\", \"" + at((h + 2) % 24) + "\", \"UTC\"),\n"
                    "  step \"s\" { run = function(ctx) ctx.log(\"ran\") end },\n"
                    "}\n");
  EXPECT_EQ(inside.status, "succeeded");
}

TEST_F(GuardOnDatabase, NoBlockingLocksSkipsWhileASessionWaitsForALock) {
  auto holder = rb::testing::connect(dsn, "holder");
  holder->exec("create table t (id int)");
  holder->begin();
  holder->exec("lock table t in access exclusive mode");
  auto waiter = rb::testing::connect(dsn, "waiter");
  int waiter_pid = std::stoi(rb::testing::scalar(*waiter, "select pg_backend_pid()"));
  std::thread blocked([&] {
    try {
      waiter->exec("select count(*) from t");
    } catch (const std::exception&) {
    }
  });
  auto admin = rb::testing::connect(dsn, "admin");
  rb::testing::wait_until_blocked(*admin, waiter_pid);
  auto o = run(R"lua(local guards = require "guards"
  runbook "t" {
    guard = { guards.no_long_transactions("1h"), guards.no_blocking_locks() },
    step "s" { run = function(ctx) ctx.log("ran") end },
  })lua");
  holder->rollback();
  blocked.join();
  EXPECT_EQ(o.status, "skipped");
  EXPECT_EQ(o.skip_reason, "1 lock request(s) are waiting");
  EXPECT_TRUE(logged().empty());
  auto g = records("guard");
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0]["ok"], true);
  EXPECT_EQ(g[1]["reason"], "1 lock request(s) are waiting");
  // and with the lock gone, the same runbook runs
  auto again = run(R"lua(local guards = require "guards"
  runbook "t" {
    guard = { guards.no_long_transactions("1h"), guards.no_blocking_locks() },
    step "s" { run = function(ctx) ctx.log("ran") end },
  })lua");
  EXPECT_EQ(again.status, "succeeded");
  EXPECT_EQ(logged(), std::vector<std::string>{"ran"});
}

}  // namespace
}  // namespace rb
