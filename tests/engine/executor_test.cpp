// Executor semantics: order, skips, retries on a fake clock, confirmation, timeouts, memory,
// compensation in reverse, on_error policies, and resume from the journal.
#include <gtest/gtest.h>

#include <sstream>

#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/run/executor.hpp"
#include "engine/run/journal.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb;
using nlohmann::json;

/// Real time, except that sleeps (retry backoff) return at once and move it forward: step
/// deadlines (on the run's clock) still expire for the Lua time-limit tests below.
class fake_clock final : public clock {
 public:
  std::chrono::steady_clock::time_point now() const override { return std::chrono::steady_clock::now() + m_skipped; }
  void sleep_for(std::chrono::milliseconds d) override {
    sleeps.push_back(d.count());
    m_skipped += d;
  }
  std::vector<long long> sleeps;

 private:
  std::chrono::milliseconds m_skipped{0};
};

class scripted_confirmer final : public run::confirmer {
 public:
  bool tty = false;
  std::vector<std::string> answers;
  std::vector<std::string> prompts;
  bool interactive() const override { return tty; }
  bool ask(const std::string& prompt) override {
    prompts.push_back(prompt);
    if (answers.empty()) return false;
    std::string a = answers.front();
    answers.erase(answers.begin());
    return a == "yes";
  }
};

/// One runbook loaded from Lua source, and everything needed to run it.
class Executor : public ::testing::Test {
 protected:
  rb::testing::temp_dir dir{"rb-exec"};
  std::unique_ptr<lua::sandbox> sb;
  run::runbook_def book;
  fake_clock clk;
  scripted_confirmer confirm;
  std::ostringstream output;
  run::reporter out{output, run::reporter_options{}};
  std::unique_ptr<audit::log> log;

  void load(const std::string& source, std::size_t memory_limit = std::size_t{256} << 20) {
    auto file = dir.write("runbooks/t.lua", source);
    lua::sandbox_options o;
    o.memory_limit = memory_limit;
    sb = std::make_unique<lua::sandbox>(o);
    lua::open_all(*sb);
    book = lua::load_runbook(*sb, file, "t");
    log = std::make_unique<audit::log>(dir.path() / "audit.jsonl");
  }

  run::run_outcome run(run::run_options opts = {}) {
    run::executor exec(*log, out, clk, confirm);
    return exec.run(book, opts);
  }

  std::vector<json> records(const std::string& event = "") {
    std::vector<json> r;
    audit::for_each_record(log->path(), [&](const json& rec) {
      if (event.empty() || rec["event"] == event) r.push_back(rec);
    });
    return r;
  }

  /// "step" fields of the records with this event, in order.
  std::vector<std::string> steps_of(const std::string& event) {
    std::vector<std::string> names;
    for (auto& r : records(event)) names.push_back(r.value("step", ""));
    return names;
  }

  /// Messages logged with ctx.log, in order.
  std::vector<std::string> logged() {
    std::vector<std::string> m;
    for (auto& r : records("log")) m.push_back(r["message"]);
    return m;
  }
};

using strings = std::vector<std::string>;

TEST_F(Executor, RunsPhasesAndStepsInDeclaredOrder) {
  load(R"lua(runbook "t" {
    phase "one" { step "a" { run = function(ctx) ctx.log("a") end },
                  step "b" { run = function(ctx) ctx.log("b") end } },
    phase "two" { step "c" { run = function(ctx) ctx.log("c " .. ctx.phase .. " " .. ctx.step) end } },
  })lua");
  auto o = run();
  EXPECT_EQ(o.status, "succeeded");
  EXPECT_EQ(o.exit_code(), 0);
  EXPECT_EQ(logged(), (strings{"a", "b", "c two c"}));
  EXPECT_EQ(steps_of("step.end"), (strings{"a", "b", "c"}));
  auto end = records("run.end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]["status"], "succeeded");
}

TEST_F(Executor, SkipsAStepWhoseConditionSaysSoAndRecordsTheReason) {
  load(R"lua(runbook "t" {
    step "maybe" { when = function(ctx) return false, "x" end, run = function(ctx) ctx.log("ran maybe") end },
    step "why"   { when = function(ctx) return "table already migrated" end, run = function(ctx) ctx.log("ran why") end },
    step "yes"   { when = function(ctx) return true end, run = function(ctx) ctx.log("ran yes") end },
  })lua");
  EXPECT_EQ(run().status, "succeeded");
  EXPECT_EQ(logged(), (strings{"ran yes"}));
  auto ends = records("step.end");
  ASSERT_EQ(ends.size(), 3u);
  EXPECT_EQ(ends[0]["status"], "skipped");
  EXPECT_EQ(ends[1]["status"], "skipped");
  EXPECT_EQ(ends[1]["reason"], "table already migrated");
  EXPECT_EQ(ends[2]["status"], "succeeded");
}

TEST_F(Executor, RetriesWithExponentialBackoffAndSucceeds) {
  load(R"lua(runbook "t" {
    step "flaky" {
      retry = { attempts = 5, backoff = "exponential", initial = "100ms", max = "300ms" },
      run = function(ctx) if ctx.attempt < 5 then error("transient " .. ctx.attempt) end ctx.log("ok on " .. ctx.attempt) end,
    },
  })lua");
  auto o = run();
  EXPECT_EQ(o.status, "succeeded");
  EXPECT_EQ(clk.sleeps, (std::vector<long long>{100, 200, 300, 300}));
  EXPECT_EQ(logged(), (strings{"ok on 5"}));
  EXPECT_EQ(records("step.retry").size(), 4u);
  EXPECT_EQ(records("step.end")[0]["attempt"], 5);
}

TEST_F(Executor, FixedBackoffWaitsTheSameEachTimeAndGivesUpAfterTheLastAttempt) {
  load(R"lua(runbook "t" {
    step "down" { retry = { attempts = 3, backoff = "fixed", initial = "2s" }, run = function() error("still down") end },
  })lua");
  auto o = run();
  EXPECT_EQ(o.status, "failed");  // nothing completed, so nothing to roll back
  EXPECT_EQ(o.exit_code(), 1);
  EXPECT_EQ(clk.sleeps, (std::vector<long long>{2000, 2000}));
  ASSERT_TRUE(o.error);
  EXPECT_NE(o.error->message.find("still down"), std::string::npos);
}

TEST_F(Executor, RetriesOnlyErrorsItsPolicyNames) {
  load(R"lua(runbook "t" {
    step "s" {
      retry = { attempts = 4, initial = "1s", on = { "serialization_failure", "08*" } },
      run = function(ctx)
        if ctx.attempt == 1 then error({ kind = "sql", class = "serialization_failure", sqlstate = "40001", message = "retry me" }) end
        if ctx.attempt == 2 then error({ kind = "connection", class = "connection", sqlstate = "08006", message = "lost" }) end
        error({ kind = "sql", class = "unique_violation", sqlstate = "23505", message = "dup" })
      end,
    },
  })lua");
  auto o = run();
  EXPECT_EQ(o.status, "failed");
  EXPECT_EQ(clk.sleeps.size(), 2u);  // two retries, then a unique_violation is not retried
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->sqlstate, "23505");
  EXPECT_EQ(o.error->klass, "unique_violation");
}

TEST_F(Executor, RollsBackCompletedStepsInReverseOrderWhenAStepFails) {
  load(R"lua(runbook "t" {
    phase "p1" {
      step "a" { run = function(ctx) ctx.log("do a") end, rollback = function(ctx) ctx.log("undo a") end },
      step "b" { run = function(ctx) ctx.log("do b") end },
    },
    phase "p2" {
      step "c" { run = function(ctx) ctx.log("do c") end, rollback = function(ctx) ctx.log("undo c") end },
      step "d" { run = function(ctx) ctx.log("do d") end, rollback = function(ctx) ctx.log("undo d (must not run)") end,
                 verify = function(ctx) check(false, "d looks wrong") end },
      step "e" { run = function(ctx) ctx.log("do e (must not run)") end },
    },
  })lua");
  auto o = run();
  EXPECT_EQ(o.status, "rolled_back");
  EXPECT_EQ(o.exit_code(), 1);
  EXPECT_EQ(o.failed_step, "p2/d");
  EXPECT_EQ(o.error->kind, error_kind::check_failed);
  EXPECT_EQ(logged(), (strings{"do a", "do b", "do c", "do d", "undo c", "undo a"}));
  EXPECT_EQ(steps_of("rollback.end"), (strings{"c", "a"}));
  for (auto& r : records("rollback.end")) EXPECT_EQ(r["status"], "succeeded");
  auto verify = records("verify");
  ASSERT_EQ(verify.size(), 1u);
  EXPECT_EQ(verify[0]["ok"], false);
}

TEST_F(Executor, AFailingRollbackHandlerEndsTheRunAsRollbackFailed) {
  load(R"lua(runbook "t" {
    step "a" { run = function() end, rollback = function(ctx) ctx.log("undo a (must not run)") end },
    step "b" { run = function() end, rollback = function() error("cannot undo b") end },
    step "c" { run = function() error("c broke") end },
  })lua");
  auto o = run();
  EXPECT_EQ(o.status, "rollback_failed");
  EXPECT_EQ(o.exit_code(), 3);
  EXPECT_NE(o.error->message.find("cannot undo b"), std::string::npos);
  EXPECT_TRUE(logged().empty());
  auto ends = records("rollback.end");
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0]["status"], "failed");
  EXPECT_EQ(records("run.end")[0]["status"], "rollback_failed");
}

TEST_F(Executor, OnErrorContinueRecordsTheFailureAndGoesOn) {
  load(R"lua(runbook "t" {
    step "optional" { on_error = "continue", run = function() error("meh") end },
    step "next" { run = function(ctx) ctx.log("next ran") end },
  })lua");
  auto o = run();
  EXPECT_EQ(o.continued, (strings{"main/optional"}));
  EXPECT_EQ(logged(), (strings{"next ran"}));
  EXPECT_EQ(records("step.end")[0]["on_error"], "continue");
}

TEST_F(Executor, AContinuedFailureEndsTheRunSucceededWithFailuresNotSucceeded) {
  load(R"lua(runbook "t" {
    step "optional" { on_error = "continue", run = function() error("meh") end },
    step "next" { run = function(ctx) ctx.log("next ran") end },
  })lua");
  auto o = run();
  EXPECT_EQ(o.status, "succeeded_with_failures");
  EXPECT_EQ(o.exit_code(), 4);
  EXPECT_EQ(o.to_json()["continued"], json(strings{"main/optional"}));
  auto end = records("run.end").at(0);
  EXPECT_EQ(end["status"], "succeeded_with_failures");
  EXPECT_EQ(end["continued"], json(strings{"main/optional"}));
  // The summary names the failed step; history shows the status and the step.
  EXPECT_NE(output.str().find("succeeded_with_failures"), std::string::npos) << output.str();
  EXPECT_NE(output.str().find("- main/optional"), std::string::npos) << output.str();
  auto h = run::history(log->path(), std::nullopt);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].status, "succeeded_with_failures");
  EXPECT_EQ(h[0].continued, (strings{"main/optional"}));
}

TEST_F(Executor, AResumedRunRemembersFailuresFromBeforeTheCrash) {
  load(R"lua(runbook "t" {
    step "optional" { on_error = "continue", run = function() error("meh") end },
    step "next" { run = function(ctx) ctx.log("next ran") end },
  })lua");
  std::string id = "20260101T000000Z-c0ffee";
  log->append(id, "run.start", {{"runbook", "t"}, {"sha256", book.file_sha256}, {"params", json::object()}});
  log->append(id, "step.start", {{"phase", "main"}, {"step", "optional"}});
  log->append(id, "step.end", {{"phase", "main"}, {"step", "optional"}, {"status", "failed"}, {"on_error", "continue"}});
  run::executor exec(*log, out, clk, confirm);
  auto o = exec.resume(book, run::load_run(log->path(), id), {});
  EXPECT_EQ(o.status, "succeeded_with_failures");
  EXPECT_EQ(o.continued, (strings{"main/optional"}));
  EXPECT_EQ(logged(), (strings{"next ran"}));
}

TEST_F(Executor, ARunWithoutFailuresStillEndsSucceededWithExitCodeZero) {
  load(R"lua(runbook "t" { step "a" { on_error = "continue", run = function() end } })lua");
  auto o = run();
  EXPECT_EQ(o.status, "succeeded");
  EXPECT_EQ(o.exit_code(), 0);
}

TEST_F(Executor, OnErrorAbortStopsWithoutCompensating) {
  load(R"lua(runbook "t" {
    on_error = "abort",
    step "a" { run = function() end, rollback = function(ctx) ctx.log("undo a") end },
    step "b" { run = function() error("stop here") end },
    step "c" { run = function(ctx) ctx.log("c") end },
  })lua");
  auto o = run();
  EXPECT_EQ(o.status, "failed");
  EXPECT_TRUE(logged().empty());
  EXPECT_TRUE(records("rollback.start").empty());
}

TEST_F(Executor, RefusesDestructiveStepsWithoutYesWhenNobodyCanBeAskedBeforeRunningAnything) {
  load(R"lua(runbook "t" {
    step "harmless" { run = function(ctx) ctx.log("ran") end },
    step "drop" { confirm = "drops table users", run = function() end },
  })lua");
  try {
    run();
    FAIL() << "expected a usage error";
  } catch (const error& e) {
    EXPECT_EQ(e.kind(), error_kind::usage);
    EXPECT_NE(std::string(e.what()).find("drops table users"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("--yes"), std::string::npos);
  }
  EXPECT_TRUE(records().empty());
}

TEST_F(Executor, YesConfirmsDestructiveStepsAndTheConfirmationIsAudited) {
  load(R"lua(runbook "t" { step "drop" { confirm = "drops table users", run = function(ctx) ctx.log("dropped") end } })lua");
  run::run_options opts;
  opts.yes = true;
  EXPECT_EQ(run(opts).status, "succeeded");
  auto c = records("confirm");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]["by"], "--yes");
  EXPECT_EQ(c[0]["answer"], "yes");
  EXPECT_EQ(c[0]["text"], "drops table users");
}

TEST_F(Executor, OnATerminalATypedYesProceedsAndAnythingElseRollsBack) {
  load(R"lua(runbook "t" {
    step "a" { run = function(ctx) ctx.log("a") end, rollback = function(ctx) ctx.log("undo a") end },
    step "drop" { confirm = "drops table users", run = function(ctx) ctx.log("dropped") end },
  })lua");
  confirm.tty = true;
  confirm.answers = {"no"};
  auto o = run();
  EXPECT_EQ(o.status, "rolled_back");
  EXPECT_EQ(o.error->kind, error_kind::not_confirmed);
  EXPECT_EQ(logged(), (strings{"a", "undo a"}));
  ASSERT_EQ(confirm.prompts.size(), 1u);
  EXPECT_NE(confirm.prompts[0].find("drops table users"), std::string::npos);
  EXPECT_EQ(records("confirm")[0]["answer"], "no");

  confirm.answers = {"yes"};
  EXPECT_EQ(run().status, "succeeded");
}

TEST_F(Executor, AStepThatLoopsForeverIsStoppedAtItsTimeLimit) {
  load(R"lua(runbook "t" {
    step "spin" { timeout = "300ms", run = function() while true do end end },
    step "after" { run = function(ctx) ctx.log("must not run") end },
  })lua");
  auto t0 = std::chrono::steady_clock::now();
  auto o = run();
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->kind, error_kind::timeout);
  EXPECT_NE(o.error->message.find("spin"), std::string::npos);
  EXPECT_LT(took, std::chrono::seconds(10));
  EXPECT_TRUE(logged().empty());
}

TEST_F(Executor, PcallCannotSwallowTheTimeout) {
  load(R"lua(runbook "t" {
    step "sly" { timeout = "300ms", run = function()
      while true do pcall(function() while true do end end) end
    end },
  })lua");
  auto o = run();
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->kind, error_kind::timeout);
}

TEST_F(Executor, AStepThatAllocatesWithoutBoundIsStoppedAtTheMemoryLimit) {
  load(R"lua(runbook "t" {
    step "hog" { run = function() local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 4096) .. i end end },
    step "after" { run = function(ctx) ctx.log("must not run") end },
  })lua", std::size_t{32} << 20);
  auto o = run();
  EXPECT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->kind, error_kind::memory);
  EXPECT_NE(o.error->message.find("memory limit"), std::string::npos);
}

TEST_F(Executor, ResumeContinuesFromTheFirstUnfinishedStepAndNeverRepeatsAFinishedOne) {
  load(R"lua(runbook "t" {
    phase "p" {
      step "a" { run = function(ctx) ctx.log("a") end },
      step "b" { idempotent = true, run = function(ctx) ctx.log("b") end },
      step "c" { run = function(ctx) ctx.log("c") end },
    },
  })lua");
  // The journal of a run that crashed while running b: a finished, b started.
  std::string id = "20260101T000000Z-abcdef";
  log->append(id, "run.start", {{"runbook", "t"}, {"sha256", book.file_sha256}, {"params", json::object()}});
  log->append(id, "phase.start", {{"phase", "p"}});
  log->append(id, "step.start", {{"phase", "p"}, {"step", "a"}, {"attempt", 1}});
  log->append(id, "step.end", {{"phase", "p"}, {"step", "a"}, {"status", "succeeded"}});
  log->append(id, "step.start", {{"phase", "p"}, {"step", "b"}, {"attempt", 1}});
  auto state = run::load_run(log->path(), id);
  run::executor exec(*log, out, clk, confirm);
  auto o = exec.resume(book, state, {});
  EXPECT_EQ(o.status, "succeeded");
  EXPECT_EQ(o.run_id, id);
  EXPECT_EQ(logged(), (strings{"b", "c"}));
  EXPECT_EQ(records("run.resume").size(), 1u);
  // A finished run cannot be resumed.
  EXPECT_THROW(exec.resume(book, run::load_run(log->path(), id), {}), error);
}

/// The journal of a run that crashed while running step b of phase p (outside a transaction).
std::string crashed_in_b(audit::log& log, const run::runbook_def& book) {
  std::string id = "20260101T000000Z-0b0b0b";
  log.append(id, "run.start", {{"runbook", "t"}, {"sha256", book.file_sha256}, {"params", json::object()}});
  log.append(id, "phase.start", {{"phase", "p"}});
  log.append(id, "step.start", {{"phase", "p"}, {"step", "a"}, {"attempt", 1}});
  log.append(id, "step.end", {{"phase", "p"}, {"step", "a"}, {"status", "succeeded"}});
  log.append(id, "step.start", {{"phase", "p"}, {"step", "b"}, {"attempt", 1}});
  return id;
}

TEST_F(Executor, ResumeDoesNotRepeatAnInterruptedStepUntilTheOperatorDecides) {
  load(R"lua(runbook "t" {
    phase "p" {
      step "a" { run = function(ctx) ctx.log("a") end },
      step "b" { run = function(ctx) ctx.log("b") end },
      step "c" { run = function(ctx) ctx.log("c") end },
    },
  })lua");
  std::string id = crashed_in_b(*log, book);
  run::executor exec(*log, out, clk, confirm);
  try {
    exec.resume(book, run::load_run(log->path(), id), {});
    FAIL() << "expected a refusal";
  } catch (const error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    std::string m = e.what();
    EXPECT_NE(m.find("step 'b' of phase 'p'"), std::string::npos) << m;
    EXPECT_NE(m.find("--rerun-interrupted"), std::string::npos) << m;
    EXPECT_NE(m.find("--mark-interrupted-done"), std::string::npos) << m;
  }
  EXPECT_TRUE(records("run.resume").empty()) << "refused before anything was recorded";
  EXPECT_TRUE(logged().empty());

  run::run_options rerun;
  rerun.rerun_interrupted = true;
  auto o = exec.resume(book, run::load_run(log->path(), id), rerun);
  EXPECT_EQ(o.status, "succeeded");
  EXPECT_EQ(logged(), (strings{"b", "c"}));
  ASSERT_EQ(records("step.rerun").size(), 1u);
  EXPECT_EQ(records("step.rerun")[0]["because"], "--rerun-interrupted");
}

TEST_F(Executor, AStepStoppedByCtrlCOutsideATransactionCountsAsInterruptedOnResume) {
  load(R"lua(runbook "t" {
    phase "p" {
      step "a" { run = function(ctx) ctx.log("a") end },
      step "b" { run = function(ctx) ctx.log("b") end },
    },
  })lua");
  // A run stopped by Ctrl-C in b with --no-rollback: b has an end, but its work may be half done.
  std::string id = crashed_in_b(*log, book);
  log->append(id, "step.end", {{"phase", "p"}, {"step", "b"}, {"status", "failed"}, {"on_error", "rollback"},
                               {"error", {{"kind", "cancelled"}, {"message", "interrupted"}}}});
  log->append(id, "run.end", {{"status", "cancelled"}, {"rolled_back", false}});
  run::executor exec(*log, out, clk, confirm);
  EXPECT_THROW(exec.resume(book, run::load_run(log->path(), id), {}), error);
  run::run_options rerun;
  rerun.rerun_interrupted = true;
  EXPECT_EQ(exec.resume(book, run::load_run(log->path(), id), rerun).status, "succeeded");
  EXPECT_EQ(logged(), (strings{"b"}));
}

TEST_F(Executor, MarkInterruptedDoneGoesOnWithoutRunningTheStepAndItsRollbackStillCounts) {
  load(R"lua(runbook "t" {
    phase "p" {
      step "a" { run = function(ctx) ctx.log("a") end },
      step "b" { run = function(ctx) ctx.log("b") end, rollback = function(ctx) ctx.log("undo b") end },
      step "c" { run = function(ctx) error("c fails") end },
    },
  })lua");
  std::string id = crashed_in_b(*log, book);
  run::executor exec(*log, out, clk, confirm);
  run::run_options opts;
  opts.mark_interrupted_done = true;
  auto o = exec.resume(book, run::load_run(log->path(), id), opts);
  EXPECT_EQ(o.status, "rolled_back");
  EXPECT_EQ(logged(), (strings{"undo b"})) << "b was not run again, and its work is undone as done work";
  auto rec = records("step.recovered");
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0]["by"], "--mark-interrupted-done");
}

TEST_F(Executor, AnInterruptedStepWhoseVerifyPassesIsTakenAsDone) {
  load(R"lua(runbook "t" {
    phase "p" {
      step "a" { run = function(ctx) ctx.log("a") end },
      step "b" { run = function(ctx) ctx.log("b") end,
                 verify = function(ctx, result) check(result == nil, "resume passes no result") end },
      step "c" { run = function(ctx) ctx.log("c") end },
    },
  })lua");
  std::string id = crashed_in_b(*log, book);
  run::executor exec(*log, out, clk, confirm);
  auto o = exec.resume(book, run::load_run(log->path(), id), {});
  EXPECT_EQ(o.status, "succeeded");
  EXPECT_EQ(logged(), (strings{"c"}));
  ASSERT_EQ(records("step.recovered").size(), 1u);
  EXPECT_EQ(records("step.recovered")[0]["by"], "verify");
  EXPECT_EQ(records("verify").at(0)["interrupted"], true);
  EXPECT_EQ(records("step.end").back()["step"], "c");
}

TEST_F(Executor, AnInterruptedStepWhoseVerifyFailsStopsTheResumeUnlessIdempotent) {
  std::string source = R"lua(runbook "t" {
    phase "p" {
      step "a" { run = function(ctx) ctx.log("a") end },
      step "b" { IDEMPOTENT run = function(ctx) ctx.log("b") return "done" end,
                 verify = function(ctx, result) check(result == "done", "not there") end },
      step "c" { run = function(ctx) ctx.log("c") end },
    },
  })lua";
  auto with = [&](const std::string& idem) {
    std::string src = source;
    src.replace(src.find("IDEMPOTENT"), 10, idem);
    return src;
  };
  load(with(""));
  std::string id = crashed_in_b(*log, book);
  {
    run::executor exec(*log, out, clk, confirm);
    try {
      exec.resume(book, run::load_run(log->path(), id), {});
      FAIL() << "expected the resume to stop";
    } catch (const error& e) {
      EXPECT_EQ(e.exit_code(), 2);
      EXPECT_NE(std::string(e.what()).find("not there"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("--rerun-interrupted"), std::string::npos) << e.what();
    }
    EXPECT_EQ(records("step.in_doubt").size(), 1u);
    EXPECT_TRUE(records("run.end").empty()) << "the run stays open for the operator's decision";
    EXPECT_TRUE(logged().empty());
  }
  book = {};  // its steps hold references into the old sandbox: drop them first
  load(with("idempotent = true,"));  // the file changed, hence --force
  run::executor exec(*log, out, clk, confirm);
  run::run_options forced;
  forced.force = true;
  auto o = exec.resume(book, run::load_run(log->path(), id), forced);
  EXPECT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"b", "c"}));
  EXPECT_EQ(records("step.rerun").at(0)["because"], "idempotent");
}

TEST_F(Executor, ResumeRefusesWhenTheRunbookChangedUnlessForced) {
  load(R"lua(runbook "t" { step "a" { run = function(ctx) ctx.log("a") end } })lua");
  std::string id = "20260101T000000Z-123456";
  log->append(id, "run.start", {{"runbook", "t"}, {"sha256", "0123456789abcdef"}, {"params", json::object()}});
  run::executor exec(*log, out, clk, confirm);
  auto state = run::load_run(log->path(), id);
  try {
    exec.resume(book, state, {});
    FAIL() << "expected a refusal";
  } catch (const error& e) {
    EXPECT_NE(std::string(e.what()).find("changed"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos);
  }
  run::run_options forced;
  forced.force = true;
  EXPECT_EQ(exec.resume(book, state, forced).status, "succeeded");
  EXPECT_EQ(records("run.resume")[0]["forced"], true);
}

TEST_F(Executor, ResumeFinishesAnInterruptedRollbackWithoutRunningForward) {
  load(R"lua(runbook "t" {
    step "a" { run = function(ctx) ctx.log("a") end, rollback = function(ctx) ctx.log("undo a") end },
    step "b" { run = function(ctx) ctx.log("b") end, rollback = function(ctx) ctx.log("undo b") end },
    step "c" { run = function(ctx) ctx.log("c") end },
  })lua");
  std::string id = "20260101T000000Z-fedcba";
  log->append(id, "run.start", {{"runbook", "t"}, {"sha256", book.file_sha256}, {"params", json::object()}});
  for (std::string s : {"a", "b"}) log->append(id, "step.end", {{"phase", "main"}, {"step", s}, {"status", "succeeded"}});
  log->append(id, "step.end", {{"phase", "main"}, {"step", "c"}, {"status", "failed"}, {"on_error", "rollback"}});
  log->append(id, "run.rollback", {{"reason", "c failed"}});
  log->append(id, "rollback.start", {{"phase", "main"}, {"step", "b"}});
  log->append(id, "rollback.end", {{"phase", "main"}, {"step", "b"}, {"status", "succeeded"}});
  run::executor exec(*log, out, clk, confirm);
  auto o = exec.resume(book, run::load_run(log->path(), id), {});
  EXPECT_EQ(o.status, "rolled_back");
  EXPECT_EQ(logged(), (strings{"undo a"}));
}

TEST_F(Executor, ParamsReachTheStepsTyped) {
  load(R"lua(runbook "t" {
    params = { batch = { type = "integer", default = 1000 }, mode = { type = "enum", values = {"fast", "safe"}, default = "safe" } },
    step "s" { run = function(ctx) ctx.log(type(ctx.params.batch) .. " " .. ctx.params.batch .. " " .. ctx.params.mode) end },
  })lua");
  run::run_options opts;
  opts.params = {{"batch", 50}, {"mode", "fast"}};
  run(opts);
  EXPECT_EQ(logged(), (strings{"number 50 fast"}));
  EXPECT_EQ(records("run.start")[0]["params"]["batch"], 50);
}

TEST_F(Executor, StepResultsReachVerifyAndTheAudit) {
  load(R"lua(runbook "t" {
    step "count" { run = function() return { rows = 42 } end,
                   verify = function(ctx, r) check(r.rows == 42, "expected 42 rows, got %s", tostring(r.rows)) end },
  })lua");
  EXPECT_EQ(run().status, "succeeded");
  EXPECT_EQ(records("step.end")[0]["result"]["rows"], 42);
  EXPECT_EQ(records("verify")[0]["ok"], true);
}

TEST_F(Executor, EveryRecordOfARunIsChainedAndVerifies) {
  load(R"lua(runbook "t" { step "a" { run = function() audit.note("hello", { n = 1 }) end } })lua");
  run();
  auto v = audit::verify(log->path(), std::nullopt);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, records().size());
  auto notes = records("note");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0]["message"], "hello");
  EXPECT_EQ(notes[0]["fields"]["n"], 1);
  EXPECT_EQ(notes[0]["step"], "a");
}

}  // namespace
