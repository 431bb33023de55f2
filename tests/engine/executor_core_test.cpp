// The executor's semantics with C++ step bodies, no Lua: order, retries on the run's clock,
// compensation, verify, on_error, dry run, resume from the journal, cancel by the stop token.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "engine/run/executor.hpp"
#include "engine/run/function_step.hpp"
#include "engine/run/journal.hpp"
#include "tests/support/child.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb;
using namespace std::chrono_literals;
using nlohmann::json;
using strings = std::vector<std::string>;

class nobody_confirms final : public run::confirmer {
 public:
  bool interactive() const override { return false; }
  bool ask(const std::string&) override { return false; }
};

/// A step_error of class `klass`, as a database failure or a failed check would carry.
run::step_failure failure(const std::string& klass, const std::string& message = "it failed") {
  run::step_error e;
  e.klass = klass;
  e.message = message;
  return run::step_failure(e);
}

/// Runbooks built in C++; every step function appends "what:step" to `trace`.
class ExecutorCore : public ::testing::Test {
 protected:
  rb::testing::temp_dir dir{"rb-core"};
  manual_clock clk;
  nobody_confirms confirm;
  std::ostringstream output;
  run::reporter out{output, run::reporter_options{}};
  std::unique_ptr<audit::log> log = std::make_unique<audit::log>(dir.path() / "audit.jsonl");
  strings trace;

  /// A step that records its run, verify and rollback, and does nothing else.
  run::step_def step(const std::string& name) {
    return run::function_step_def(name, {.run = record("run", name),
                                         .verify = record("verify", name),
                                         .rollback = record("rollback", name)});
  }
  /// A step whose run fails with class `klass`; its rollback is recorded (never expected).
  run::step_def failing(const std::string& name, const std::string& klass = "check") {
    return run::function_step_def(name, {.run = [this, name, klass](const run::step_call&) -> json {
                                           trace.push_back("run:" + name);
                                           throw failure(klass);
                                         },
                                         .rollback = record("rollback", name)});
  }
  std::function<json(const run::step_call&)> record(const std::string& what, const std::string& name) {
    return [this, what, name](const run::step_call&) -> json {
      trace.push_back(what + ":" + name);
      return nullptr;
    };
  }
  static run::phase_def phase(const std::string& name, std::vector<run::step_def> steps) {
    run::phase_def p;
    p.name = name;
    p.steps = std::move(steps);
    return p;
  }
  static run::runbook_def book(std::vector<run::phase_def> phases) {
    run::runbook_def b;
    b.name = "core";
    b.file = "core.cpp";
    b.file_sha256 = "c0ffee";
    b.phases = std::move(phases);
    return b;
  }
  run::run_outcome run(const run::runbook_def& b, run::run_options opts = {}) {
    run::executor exec(*log, out, clk, confirm);
    return exec.run(b, opts);
  }
  std::vector<json> records(const std::string& event) {
    std::vector<json> r;
    audit::for_each_record(dir.path() / "audit.jsonl", [&](const json& rec) {
      if (rec["event"] == event) r.push_back(rec);
    });
    return r;
  }
  strings field_of(const std::string& event, const std::string& field) {
    strings v;
    for (auto& r : records(event)) v.push_back(r.value(field, ""));
    return v;
  }
};

TEST_F(ExecutorCore, RunsPhasesAndStepsInDeclaredOrderEachVerifiedAfterItRuns) {
  auto b = book({phase("one", {step("a"), step("b")}), phase("two", {step("c")})});
  auto o = run(b);
  EXPECT_EQ(o.status, "succeeded");
  EXPECT_EQ(o.exit_code(), 0);
  EXPECT_EQ(trace, (strings{"run:a", "verify:a", "run:b", "verify:b", "run:c", "verify:c"}));
  EXPECT_EQ(field_of("phase.start", "phase"), (strings{"one", "two"}));
  EXPECT_EQ(field_of("step.end", "step"), (strings{"a", "b", "c"}));
  EXPECT_EQ(field_of("step.end", "status"), (strings{"succeeded", "succeeded", "succeeded"}));
}

TEST_F(ExecutorCore, RetriesWithBackoffReadFromTheRunsClockWithoutSleeping) {
  int calls = 0;
  auto flaky = run::function_step_def("flaky", {.run = [&](const run::step_call& c) -> json {
                                                  ++calls;
                                                  if (c.attempt < 3) throw failure("lock_not_available");
                                                  return "done on attempt " + std::to_string(c.attempt);
                                                }});
  flaky.retry = {.attempts = 3, .backoff = run::backoff_kind::exponential, .initial = 1000ms, .max = 60'000ms,
                 .on = {"lock_not_available"}};
  auto t0 = std::chrono::steady_clock::now();
  auto start = clk.now();
  auto o = run(book({phase("p", {flaky})}));
  EXPECT_EQ(o.status, "succeeded");
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(clk.sleeps(), (std::vector<std::chrono::milliseconds>{1000ms, 2000ms}));
  EXPECT_GE(clk.now() - start, 3000ms);                           // the run's time went on ...
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2000ms);       // ... real time hardly did
  auto retries = records("step.retry");
  ASSERT_EQ(retries.size(), 2u);
  EXPECT_EQ(retries[0]["delay_ms"], 1000);
  EXPECT_EQ(retries[1]["delay_ms"], 2000);
  EXPECT_EQ(records("step.end").at(0)["attempt"], 3);
  EXPECT_EQ(records("step.end").at(0)["result"], "done on attempt 3");
}

TEST_F(ExecutorCore, RetriesOnlyTheErrorsItsOnFilterNames) {
  int calls = 0;
  auto s = run::function_step_def("unique", {.run = [&](const run::step_call&) -> json {
                                               ++calls;
                                               throw failure("unique_violation");
                                             }});
  s.retry = {.attempts = 5, .backoff = run::backoff_kind::fixed, .initial = 500ms, .max = 500ms,
             .on = {"lock_not_available", "08*"}};
  auto o = run(book({phase("p", {s})}));
  EXPECT_EQ(o.status, "failed");  // nothing was completed, so nothing was undone
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(clk.sleeps().empty());
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->klass, "unique_violation");
}

TEST_F(ExecutorCore, FixedBackoffWaitsTheSameEachTimeAndGivesUpAfterTheLastAttempt) {
  int calls = 0;
  auto s = run::function_step_def("never", {.run = [&](const run::step_call&) -> json {
                                              ++calls;
                                              throw failure("serialization_failure");
                                            }});
  s.retry = {.attempts = 3, .backoff = run::backoff_kind::fixed, .initial = 500ms, .max = 60'000ms, .on = {}};
  auto o = run(book({phase("p", {s})}));
  EXPECT_EQ(o.status, "failed");
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(clk.sleeps(), (std::vector<std::chrono::milliseconds>{500ms, 500ms}));
  EXPECT_EQ(records("step.end").at(0)["attempt"], 3);
}

TEST_F(ExecutorCore, CompensatesCompletedStepsInReverseOrderWhenAStepFails) {
  auto no_handler = run::function_step_def("no handler", {.run = record("run", "no handler")});
  auto b = book({phase("one", {step("a"), no_handler}), phase("two", {step("b"), failing("c"), step("d")})});
  auto o = run(b);
  EXPECT_EQ(o.status, "rolled_back");
  EXPECT_TRUE(o.rolled_back);
  EXPECT_EQ(o.failed_step, "two/c");
  EXPECT_EQ(trace, (strings{"run:a", "verify:a", "run:no handler", "run:b", "verify:b", "run:c", "rollback:b",
                            "rollback:a"}));
  EXPECT_EQ(field_of("rollback.start", "step"), (strings{"b", "a"}));
  EXPECT_EQ(field_of("rollback.end", "status"), (strings{"succeeded", "succeeded"}));
  EXPECT_EQ(records("run.end").at(0)["status"], "rolled_back");
}

TEST_F(ExecutorCore, AFailingRollbackHandlerEndsTheRunAsRollbackFailed) {
  auto bad = run::function_step_def("b", {.run = record("run", "b"), .rollback = [this](const run::step_call&) -> json {
                                            trace.push_back("rollback:b");
                                            throw failure("check", "cannot undo b");
                                          }});
  auto o = run(book({phase("p", {step("a"), bad, failing("c")})}));
  EXPECT_EQ(o.status, "rollback_failed");
  EXPECT_EQ(o.exit_code(), exit_codes::rollback_failed);
  ASSERT_TRUE(o.error);
  EXPECT_NE(o.error->message.find("the rollback of step 'b'"), std::string::npos) << o.error->message;
  EXPECT_NE(o.error->message.find("cannot undo b"), std::string::npos);
  // The rollback path stops at the handler that failed: a's work is left for the operator.
  EXPECT_EQ(trace, (strings{"run:a", "verify:a", "run:b", "run:c", "rollback:b"}));
  EXPECT_EQ(records("run.end").at(0)["status"], "rollback_failed");
}

TEST_F(ExecutorCore, AFailingVerifyFailsTheStepWithoutRetryingAndRollsBack) {
  int runs = 0;
  auto unverified = run::function_step_def("b", {.run = [&](const run::step_call&) -> json { return ++runs; },
                                                 .verify = [](const run::step_call&) -> json {
                                                   throw failure("check", "b left no rows");
                                                 }});
  unverified.retry.attempts = 3;
  auto o = run(book({phase("p", {step("a"), unverified, step("c")})}));
  EXPECT_EQ(o.status, "rolled_back");
  EXPECT_EQ(runs, 1);
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->message, "b left no rows");
  EXPECT_EQ(trace, (strings{"run:a", "verify:a", "rollback:a"}));
  auto verifies = records("verify");
  ASSERT_EQ(verifies.size(), 2u);
  EXPECT_EQ(verifies[1]["ok"], false);
}

TEST_F(ExecutorCore, OnErrorContinueRecordsTheFailureAndGoesOn) {
  auto b = failing("b");
  b.on_err = run::on_error::cont;
  auto o = run(book({phase("p", {step("a"), b, step("c")})}));
  EXPECT_EQ(o.status, "succeeded_with_failures");
  EXPECT_EQ(o.continued, (strings{"p/b"}));
  EXPECT_EQ(trace, (strings{"run:a", "verify:a", "run:b", "run:c", "verify:c"}));
  EXPECT_EQ(field_of("step.end", "status"), (strings{"succeeded", "failed", "succeeded"}));
}

TEST_F(ExecutorCore, ADryRunRunsNoCodeAndWritesNothing) {
  auto s = step("b");
  s.retry.attempts = 4;
  auto b = book({phase("p", {step("a"), s})});
  run::print_dry_run(b, {}, out);
  EXPECT_TRUE(trace.empty());
  EXPECT_NE(output.str().find("would run 'a'"), std::string::npos) << output.str();
  EXPECT_NE(output.str().find("up to 4 attempts"), std::string::npos);
  EXPECT_TRUE(records("run.start").empty());
  EXPECT_EQ(std::filesystem::exists(dir.path() / "audit.jsonl") ? std::filesystem::file_size(dir.path() / "audit.jsonl") : 0u,
            0u);
}

TEST_F(ExecutorCore, ResumeAfterACrashNeverRunsAFinishedStepAgain) {
  // The run dies (the process ends) in the middle of step b; its journal is all that is left.
  auto marks = dir.path() / "marks";
  auto b = book({phase("p", {step("a"), step("b"), step("c")})});
  b.phases[0].steps[1] = run::function_step_def("b", {.run = [&](const run::step_call&) -> json {
                                                        if (!std::filesystem::exists(marks)) ::_exit(9);  // the crash
                                                        trace.push_back("run:b");
                                                        return nullptr;
                                                      }});
  b.phases[0].steps[1].idempotent = true;  // so the resume may run it again without asking
  log.reset();
  auto crashed = rb::testing::in_child(
      [&] {
        audit::log child_log(dir.path() / "audit.jsonl");
        run::executor exec(child_log, out, clk, confirm);
        exec.run(b, {});
        return strings{"not crashed"};
      },
      30s);
  ASSERT_TRUE(crashed.finished);
  ASSERT_EQ(crashed.exit_code, 9);
  ASSERT_EQ(field_of("step.end", "step"), (strings{"a"}));
  std::string id = records("run.start").at(0)["run"];

  std::ofstream(marks) << "resumed";
  log = std::make_unique<audit::log>(dir.path() / "audit.jsonl");
  run::executor exec(*log, out, clk, confirm);
  auto o = exec.resume(b, run::load_run(log->path(), id), {});
  EXPECT_EQ(o.status, "succeeded");
  EXPECT_EQ(o.run_id, id);
  EXPECT_EQ(trace, (strings{"run:b", "run:c", "verify:c"}));  // never a again
  EXPECT_EQ(field_of("step.end", "step"), (strings{"a", "b", "c"}));
  EXPECT_TRUE(audit::verify(log->path(), std::nullopt).ok);
  EXPECT_THROW(exec.resume(b, run::load_run(log->path(), id), {}), error);  // it ended: nothing to resume
}

TEST_F(ExecutorCore, ACancelThroughTheStopTokenStopsTheStepAndRollsBack) {
  run::executor exec(*log, out, clk, confirm);
  auto waits = run::function_step_def("waits", {.run = [&](const run::step_call& c) -> json {
                                                  trace.push_back("run:waits");
                                                  exec.stop().request(SIGINT);  // the operator, at this moment
                                                  c.ctx->check_interrupt();     // as the Lua hook would
                                                  trace.push_back("not interrupted");
                                                  return nullptr;
                                                }});
  auto o = exec.run(book({phase("p", {step("a"), waits, step("c")})}), {});
  EXPECT_EQ(o.status, "cancelled");
  EXPECT_EQ(o.exit_code(), exit_codes::cancelled);
  EXPECT_TRUE(o.rolled_back);
  EXPECT_EQ(trace, (strings{"run:a", "verify:a", "run:waits", "rollback:a"}));
  auto cancel = records("run.cancel");
  ASSERT_EQ(cancel.size(), 1u);
  EXPECT_EQ(cancel[0]["signal"], SIGINT);
  EXPECT_EQ(cancel[0]["at"], "p/waits");
}

TEST_F(ExecutorCore, AStopRequestedBeforeTheRunStopsItBeforeItsFirstStep) {
  run::executor exec(*log, out, clk, confirm);
  exec.stop().request(SIGTERM);
  run::run_options opts;
  opts.no_rollback = true;
  auto o = exec.run(book({phase("p", {step("a")})}), opts);
  EXPECT_EQ(o.status, "cancelled");
  EXPECT_FALSE(o.rolled_back);
  EXPECT_TRUE(trace.empty());
  EXPECT_EQ(records("run.cancel").at(0)["signal"], SIGTERM);
}

}  // namespace
