// Per-run services: the stop token and the clock belong to a run. Two runs in one process (as a
// scheduler will hold them) never see each other's cancel or deadline; a fake clock drives
// step timeouts (C++ and Lua) and backoff without real sleeping.
#include <gtest/gtest.h>

#include <poll.h>
#include <signal.h>

#include <atomic>
#include <sstream>
#include <thread>

#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/run/command.hpp"
#include "engine/run/executor.hpp"
#include "engine/run/function_step.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb;
using namespace std::chrono_literals;
using nlohmann::json;
using steady = std::chrono::steady_clock;

class nobody_confirms final : public run::confirmer {
 public:
  bool interactive() const override { return false; }
  bool ask(const std::string&) override { return false; }
};

/// Waits (polling observable state) until `pred` holds; false after `limit`.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
  auto until = steady::now() + limit;
  while (!pred()) {
    if (steady::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

run::runbook_def one_step_book(const std::string& name, run::step_def step) {
  run::phase_def p;
  p.name = "p";
  p.steps.push_back(run::function_step_def("first", {.run = [](const run::step_call&) -> json { return nullptr; },
                                                      .rollback = [](const run::step_call&) -> json { return "undone"; }}));
  p.steps.push_back(std::move(step));
  run::runbook_def b;
  b.name = name;
  b.phases.push_back(std::move(p));
  return b;
}

/// One run with everything of its own: audit log, reporter, clock, executor (stop token).
struct one_run {
  explicit one_run(const std::filesystem::path& dir, const std::string& name)
      : log(dir / (name + ".jsonl")), exec(log, out, clk, confirm) {}
  std::ostringstream output;
  run::reporter out{output, run::reporter_options{}};
  manual_clock clk;
  nobody_confirms confirm;
  audit::log log;
  run::executor exec;
  std::vector<json> records(const std::string& event) {
    std::vector<json> r;
    audit::for_each_record(log.path(), [&](const json& rec) {
      if (rec["event"] == event) r.push_back(rec);
    });
    return r;
  }
};

TEST(StopSource, ARequestWakesAWaiterAtOnceAndCanBeTakenUp) {
  run::stop_source stop;
  EXPECT_FALSE(stop.requested());
  EXPECT_FALSE(stop.wait_for(1ms));
  int called = 0;
  auto cb = stop.on_request([&] { ++called; });
  auto t0 = steady::now();
  std::thread asker([&] {
    std::this_thread::sleep_for(50ms);
    stop.request(SIGTERM);
  });
  EXPECT_TRUE(stop.wait_for(60s));
  EXPECT_LT(steady::now() - t0, 10s);
  asker.join();
  EXPECT_EQ(called, 1);
  EXPECT_EQ(stop.signal_number(), SIGTERM);
  pollfd p{stop.wake_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 1);  // a poll() loop wakes too
  stop.request(SIGINT);            // the first request wins
  EXPECT_EQ(stop.signal_number(), SIGTERM);
  EXPECT_EQ(called, 1);
  stop.acknowledge();
  EXPECT_FALSE(stop.requested());
  EXPECT_TRUE(stop.ever_requested());
}

TEST(RunServices, CancellingOneOfTwoRunsInOneProcessStopsOnlyThatOne) {
  rb::testing::temp_dir dir{"rb-two-runs"};
  one_run a(dir.path(), "a"), b(dir.path(), "b");
  std::atomic<bool> a_spinning{false}, a_done{false}, b_interrupted{false};
  auto spin = run::function_step_def("spin", {.run = [&](const run::step_call& c) -> json {
                                                a_spinning = true;
                                                for (;;) {
                                                  c.ctx->check_interrupt();
                                                  c.ctx->stop().wait_for(1s);  // wakes at once on a stop
                                                }
                                              }});
  auto work = run::function_step_def("work", {.run = [&](const run::step_call& c) -> json {
                                                while (!a_done) {  // B is mid-step all through A's cancel
                                                  if (c.ctx->stop().requested()) b_interrupted = true;
                                                  c.ctx->check_interrupt();
                                                  std::this_thread::sleep_for(1ms);
                                                }
                                                return "finished";
                                              }});
  auto book_a = one_step_book("a", spin), book_b = one_step_book("b", work);
  run::run_outcome oa, ob;
  std::thread ta([&] {
    oa = a.exec.run(book_a, {});
    a_done = true;
  });
  std::thread tb([&] { ob = b.exec.run(book_b, {}); });
  ASSERT_TRUE(wait_until([&] { return a_spinning.load(); }));
  a.exec.stop().request(SIGTERM);
  ta.join();
  tb.join();
  EXPECT_EQ(oa.status, "cancelled");
  EXPECT_TRUE(oa.rolled_back);
  EXPECT_EQ(a.records("run.cancel").size(), 1u);
  EXPECT_EQ(a.records("rollback.end").size(), 1u);
  EXPECT_EQ(ob.status, "succeeded");
  EXPECT_FALSE(b_interrupted);
  EXPECT_TRUE(b.records("run.cancel").empty());
  EXPECT_TRUE(b.records("rollback.start").empty());
}

TEST(RunServices, AFakeClockDrivesAStepTimeoutAndItTouchesNoOtherRun) {
  rb::testing::temp_dir dir{"rb-two-clocks"};
  one_run a(dir.path(), "a"), b(dir.path(), "b");
  std::atomic<bool> a_done{false};
  std::atomic<int> a_ticks{0};
  // A's time goes by an hour each turn of its loop: its 5 hour limit ends it in 5 turns.
  auto slow = run::function_step_def("slow", {.run = [&](const run::step_call& c) -> json {
                                               for (;;) {
                                                 c.ctx->check_interrupt();
                                                 ++a_ticks;
                                                 a.clk.advance(1h);
                                               }
                                             }});
  slow.timeout = std::chrono::hours(5);
  // B's step has a 1 ms limit, but B's clock never moves: B is never out of time.
  auto patient = run::function_step_def("patient", {.run = [&](const run::step_call& c) -> json {
                                                     while (!a_done) {
                                                       c.ctx->check_interrupt();
                                                       std::this_thread::sleep_for(1ms);
                                                     }
                                                     return nullptr;
                                                   }});
  patient.timeout = 1ms;
  auto book_a = one_step_book("a", slow), book_b = one_step_book("b", patient);
  run::run_outcome oa, ob;
  auto t0 = steady::now();
  std::thread tb([&] { ob = b.exec.run(book_b, {}); });
  std::thread ta([&] {
    oa = a.exec.run(book_a, {});
    a_done = true;
  });
  ta.join();
  tb.join();
  EXPECT_LT(steady::now() - t0, 30s);  // five hours of A's time, no real wait
  EXPECT_EQ(oa.status, "rolled_back");
  ASSERT_TRUE(oa.error);
  EXPECT_EQ(oa.error->kind, error_kind::timeout);
  EXPECT_EQ(a_ticks.load(), 5);
  EXPECT_EQ(ob.status, "succeeded");
  EXPECT_FALSE(ob.error);
}

TEST(RunServices, AStopWakesARetryBackoffAtOnce) {
  rb::testing::temp_dir dir{"rb-backoff-stop"};
  system_clock real;
  nobody_confirms confirm;
  std::ostringstream output;
  run::reporter out{output, run::reporter_options{}};
  audit::log log(dir.path() / "audit.jsonl");
  run::executor exec(log, out, real, confirm);
  std::atomic<int> attempts{0};
  auto flaky = run::function_step_def("flaky", {.run = [&](const run::step_call&) -> json {
                                                 ++attempts;
                                                 throw std::runtime_error("not yet");
                                               }});
  flaky.retry.attempts = 3;
  flaky.retry.initial = std::chrono::hours(1);  // a real hour, unless the stop cuts it short
  auto book = one_step_book("r", flaky);
  run::run_outcome o;
  auto t0 = steady::now();
  std::thread t([&] { o = exec.run(book, {}); });
  ASSERT_TRUE(wait_until([&] { return attempts.load() == 1; }));
  exec.stop().request(SIGINT);
  t.join();
  EXPECT_LT(steady::now() - t0, 30s);
  EXPECT_EQ(attempts.load(), 1);
  EXPECT_EQ(o.status, "cancelled");
  EXPECT_TRUE(o.rolled_back);
}

TEST(RunServices, AShellCommandIsKilledByItsOwnRunsStopOnly) {
  rb::testing::temp_dir dir{"rb-shell-stop"};
  std::ostringstream output;
  run::reporter out{output, run::reporter_options{}};
  audit::log log_a(dir.path() / "a.jsonl"), log_b(dir.path() / "b.jsonl");
  run::runbook_def book;
  book.name = "shell";
  run::stop_source stop_a, stop_b;
  run::run_context a(log_a, out, "A", book, json::object()), b(log_b, out, "B", book, json::object());
  manual_clock clk_a, clk_b;
  a.use_services(clk_a, stop_a);
  b.use_services(clk_b, stop_b);
  shell::process_result ra, res_b;
  std::thread ta([&] {
    shell::process_options o;
    o.argv = {"sleep", "30"};
    ra = run::run_command(a, o, false, json::object());
  });
  std::thread tb([&] {
    shell::process_options o;
    o.argv = {"sh", "-c", "sleep 0.5; echo done"};
    res_b = run::run_command(b, o, false, json::object());
  });
  std::this_thread::sleep_for(100ms);  // most likely both are running now; a stop before A's start counts too
  auto t0 = steady::now();
  stop_a.request(SIGINT);
  ta.join();
  EXPECT_LT(steady::now() - t0, 5s);  // SIGTERM at once, not after the command's 30 s
  tb.join();
  EXPECT_TRUE(ra.cancelled);
  EXPECT_FALSE(res_b.cancelled);
  EXPECT_EQ(res_b.exit_code, 0);
  EXPECT_EQ(res_b.out, "done\n");
}

TEST(RunServices, AFakeClockDrivesTheTimeLimitOfLuaCode) {
  rb::testing::temp_dir dir{"rb-lua-clock"};
  auto file = dir.write("runbooks/t.lua", R"lua(runbook "t" {
    step "spin" { timeout = "1h", run = function() while true do end end },
  })lua");
  lua::sandbox sb;
  lua::open_all(sb);
  auto book = lua::load_runbook(sb, file, "t");
  std::ostringstream output;
  run::reporter out{output, run::reporter_options{}};
  audit::log log(dir.path() / "audit.jsonl");
  manual_clock clk;
  nobody_confirms confirm;
  run::executor exec(log, out, clk, confirm);
  std::atomic<bool> done{false};
  // The sandbox's hook reads the run's clock: moving it past the hour stops the loop.
  std::thread time_goes_by([&] {
    while (!done) {
      clk.advance(10min);
      std::this_thread::sleep_for(5ms);
    }
  });
  auto t0 = steady::now();
  auto o = exec.run(book, {});
  done = true;
  time_goes_by.join();
  EXPECT_LT(steady::now() - t0, 30s);
  EXPECT_EQ(o.status, "failed");
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->kind, error_kind::timeout);
}

}  // namespace
