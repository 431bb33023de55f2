// Mistakes in a watch are refused when the runbook is loaded (so by `runbook check`, before
// anything runs), each with the file and the line of the watch or trigger at fault.
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class WatchDsl : public ::testing::Test {
 protected:
  rb::testing::temp_dir dir{"rb-watch-dsl"};
  std::unique_ptr<rb::lua::sandbox> sb = rb::lua::make_sandbox({});

  fs::path file() const { return dir.path() / "runbooks" / "w.lua"; }

  /// The error loading `code` gives; fails the test when it loads or fails otherwise.
  std::string load_error(std::string_view code) {
    dir.write("runbooks/w.lua", code);
    try {
      auto book = rb::lua::load_runbook(*sb, file(), "w");
      ADD_FAILURE() << "loaded:\n" << code;
    } catch (const rb::error& e) {
      EXPECT_EQ(e.kind(), rb::error_kind::bad_runbook) << e.what();
      return e.what();
    }
    return "";
  }
  /// "file:line: " as an error about that line starts.
  std::string at(int line) const { return file().string() + ":" + std::to_string(line) + ": "; }
};

TEST_F(WatchDsl, ASyntaxErrorInWhenNamesTheTriggerLineAndColumn) {
  std::string msg = load_error(R"lua(runbook "w" {
  watch "w" {
    metrics = { rate = [[select 1]] },
    trigger "ok" { when = "rate > 1", action = "abort" },
    trigger "broken" { when = "rate < ", action = "rollback" },
  },
})lua");
  EXPECT_THAT(msg, StartsWith(at(5) + "trigger 'broken': when: expression 'rate < ': column "));
  EXPECT_THAT(msg, HasSubstr("expected a value"));
}

TEST_F(WatchDsl, AnUnknownMetricInWhenUnlessOrClearWhenIsNamedWithTheMetricsThereAre) {
  std::string when = load_error(R"lua(runbook "w" {
  watch "w" {
    metrics = { rate = [[select 1]], blocked = [[select 0]] },
    trigger "t" { when = "rte < 0.5", action = "rollback" },
  },
})lua");
  EXPECT_EQ(when, at(4) + "watch 'w': trigger 't': 'rte < 0.5' reads 'rte', which is not one of its metrics (blocked, rate)");

  std::string unless = load_error(R"lua(runbook "w" {
  watch "w" {
    metrics = { rate = [[select 1]] },
    trigger "a" { when = "rate < 0.5", action = "abort" },
    trigger "b" { when = "rate < 0.5",
                  action = investigate { window = "10m", unless = "locks == 0", action = "rollback" } },
  },
})lua");
  EXPECT_EQ(unless, at(5) + "watch 'w': trigger 'b': 'locks == 0' reads 'locks', which is not one of its metrics (rate)");

  std::string clear = load_error(R"lua(runbook "w" {
  watch "w" {
    metrics = { rate = [[select 1]] },
    trigger "c" { when = "rate < 0.9", clear_when = "rate >= 0.95 and ok", action = "abort" },
  },
})lua");
  EXPECT_EQ(clear, at(4) + "watch 'w': trigger 'c': 'rate >= 0.95 and ok' reads 'ok', which is not one of its metrics (rate)");
}

TEST_F(WatchDsl, AnUnknownActionStringSaysWhatItMayBe) {
  std::string msg = load_error(R"lua(runbook "w" {
  watch "w" {
    metrics = { rate = [[select 1]] },

    trigger "t" { when = "rate < 0.5", action = "rolback" },
  },
})lua");
  EXPECT_THAT(msg, StartsWith(at(5) + "trigger 't': action = \"rolback\" is not \"rollback\" or \"abort\" (did you mean 'rollback'?)"));
}

TEST_F(WatchDsl, InvestigateNeedsAWindowAndAnAction) {
  std::string no_window = load_error(R"lua(runbook "w" {
  watch "w" {
    metrics = { rate = [[select 1]] },
    trigger "t" { when = "rate < 0.5", action = investigate { unless = "rate > 0.9", action = "rollback" } },
  },
})lua");
  EXPECT_EQ(no_window, at(4) + "watch 'w': trigger 't': investigate needs a window such as \"10m\"");

  std::string no_action = load_error(R"lua(runbook "w" {
  watch "w" {
    metrics = { rate = [[select 1]] },
    trigger "t" { when = "rate < 0.5",
                  action = investigate { window = "10m", unless = "rate > 0.9" } },
  },
})lua");
  EXPECT_EQ(no_action, at(4) + "trigger 't': investigate needs an action (what to do when the window passes)");
}

TEST_F(WatchDsl, ATriggerOutsideAWatchIsRefused) {
  std::string msg = load_error(R"lua(runbook "w" {
  step "s" { run = function() end },
  trigger "t" { when = "x > 1", action = "abort" },
})lua");
  EXPECT_EQ(msg, at(3) + "trigger 't' belongs inside a watch \"name\" { ... }");
}

TEST_F(WatchDsl, AWatchInsideAPhaseIsRefusedAtTheWatch) {
  std::string msg = load_error(R"lua(runbook "w" {
  phase "p" {
    step "s" { run = function() end },
    watch "inner" {
      metrics = { rate = [[select 1]] },
      trigger "t" { when = "rate > 1", action = "abort" },
    },
  },
})lua");
  EXPECT_THAT(msg, StartsWith(at(4) + "phase 'p': item 2 is not a step \"name\" { ... } (a watch is a phase of its own: put it beside the phases)"));
}

TEST_F(WatchDsl, TwoTriggersWithOneNameAreRefusedAtTheSecond) {
  std::string msg = load_error(R"lua(runbook "w" {
  watch "w" {
    metrics = { rate = [[select 1]] },
    trigger "slow" { when = "rate > 1", action = "abort" },
    trigger "slow" { when = "rate > 2", action = "rollback" },
  },
})lua");
  EXPECT_EQ(msg, at(5) + "watch 'w': trigger 'slow': another trigger of the watch has that name (line 4)");
}

TEST_F(WatchDsl, ABandWhoseAfterIsNotBeforeItsBeforeIsRefused) {
  std::string msg = load_error(R"lua(runbook "w" {
  watch "w" {
    metrics = { rate = [[select 1]] },
    trigger "t" { after = "30m", before = "5m", when = "rate > 1", action = "abort" },
  },
})lua");
  EXPECT_EQ(msg, at(4) + "watch 'w': trigger 't': after (30m) must come before before (5m)");
  std::string equal = load_error(R"lua(runbook "w" {
  watch "w" {
    metrics = { rate = [[select 1]] },
    trigger "t" { after = "5m", before = "5m", when = "rate > 1", action = "abort" },
  },
})lua");
  EXPECT_EQ(equal, at(4) + "watch 'w': trigger 't': after (5m) must come before before (5m)");
}

TEST_F(WatchDsl, AMetricNameThatIsNotAnIdentifierIsRefused) {
  std::string msg = load_error(R"lua(runbook "w" {
  step "s" { run = function() end },
  watch "w" {
    metrics = { ["success-rate"] = [[select 1]] },
    trigger "t" { when = "x > 1", action = "abort" },
  },
})lua");
  EXPECT_EQ(msg, at(3) + "watch 'w': metric name 'success-rate' must be a plain name (letters, digits, _) to be usable in conditions");
  std::string reserved = load_error(R"lua(runbook "w" {
  watch "w" {
    metrics = { ["and"] = [[select 1]] },
    trigger "t" { when = "x > 1", action = "abort" },
  },
})lua");
  EXPECT_THAT(reserved, StartsWith(at(2) + "watch 'w': metric name 'and' must be a plain name"));
}

TEST(WatchCheck, RunbookCheckReportsAWatchMistakeWithFileAndLineBeforeAnythingRuns) {
  rb::testing::temp_dir dir{"rb-watch-check"};
  rb::testing::cli_sandbox cli{dir.path()};
  dir.write("runbooks/mon/bad.lua", R"lua(runbook "mon.bad" {
  watch "w" {
    metrics = { rate = [[select 1]] },
    trigger "t" { when = "rate <> 1", action = "rollback" },
  },
})lua");
  auto r = cli.run({"check"});
  EXPECT_EQ(r.exit_code, rb::exit_codes::usage) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("error  runbooks/mon/bad.lua:4: trigger 't': when: expression 'rate <> 1': column "));
  EXPECT_THAT(r.out, HasSubstr("1 of 1 runbooks have errors"));
  EXPECT_FALSE(fs::exists(cli.audit_log()));
}

}  // namespace
