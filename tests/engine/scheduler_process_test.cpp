// The scheduler's state directory and child processes, for real: flock, atomic state, spawn, reap.
#include <gtest/gtest.h>

#include <date/date.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "engine/error.hpp"
#include "engine/schedule/launcher.hpp"
#include "engine/schedule/state.hpp"
#include "tests/support/temp_dir.hpp"

namespace rb::schedule {
namespace {

using namespace std::chrono_literals;

entry nightly() { return entry{"maintenance.daily", "primary", cron::parse("0 3 * * *"), missed_policy::skip, {{"batch", 500}}}; }

/// Waits (up to 10 s) for the launcher to reap `pid`; returns its exit code.
int wait_reaped(process_launcher& l, long long pid) {
  for (int i = 0; i < 1000; ++i) {
    auto ended = l.reap();
    if (auto it = ended.find(pid); it != ended.end()) return it->second;
    std::this_thread::sleep_for(10ms);
  }
  ADD_FAILURE() << "child " << pid << " did not end";
  return -999;
}

TEST(SchedulerState, OneSchedulerPerStateDirectory) {
  rb::testing::temp_dir dir;
  state_dir first(dir.path() / "state");
  try {
    state_dir second(dir.path() / "state");
    FAIL() << "two schedulers shared a state directory";
  } catch (const error& e) {
    EXPECT_EQ(e.kind(), error_kind::locked);
    EXPECT_NE(std::string(e.what()).find("pid " + std::to_string(::getpid())), std::string::npos) << e.what();
  }
}

TEST(SchedulerState, WhatWasCheckedAndClaimedSurvivesARestart) {
  rb::testing::temp_dir dir;
  sys_seconds t = date::sys_days(date::year(2026) / 12 / 3) + 3h;
  {
    state_dir s(dir.path());
    local_claims c(s);
    s.set_last_checked("maintenance.daily@primary", t);
    EXPECT_TRUE(c.try_claim(nightly(), "2026-12-03T03:00:00Z"));
    c.finished(nightly(), "2026-12-03T03:00:00Z", "succeeded");
  }
  state_dir again(dir.path());
  local_claims c(again);
  EXPECT_EQ(again.last_checked("maintenance.daily@primary"), t);
  EXPECT_FALSE(c.try_claim(nightly(), "2026-12-03T03:00:00Z")) << "a due time runs once, also across restarts";
  EXPECT_TRUE(c.try_claim(nightly(), "2026-12-04T03:00:00Z"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / ".schedule-state.json.tmp"));
}

TEST(SchedulerProcess, StartsRunbookRunWithTheEntrysArguments) {
  rb::testing::temp_dir dir;
  std::filesystem::path args = dir.path() / "args";
  std::filesystem::path program = dir.write("fake-runbook", "#!/bin/sh\nprintf '%s\\n' \"$@\" > '" + args.string() + "'\nexit 3\n");
  std::filesystem::permissions(program, std::filesystem::perms::owner_all);
  process_launcher l(program, {"--config", "/etc/runbook/runbook.lua"});
  long long pid = l.start(nightly(), "2026-12-03T03:00:00Z");
  EXPECT_EQ(wait_reaped(l, pid), 3);
  std::ifstream in(args);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_EQ(s.str(),
            "run\nmaintenance.daily\n--target\nprimary\n--param\nbatch=500\n--yes\n--reason\n"
            "scheduled (0 3 * * *, due 2026-12-03T03:00:00Z)\n--config\n/etc/runbook/runbook.lua\n");
}

TEST(SchedulerProcess, TerminateAsksTheChildToStopAndKillEndsItsGroup) {
  rb::testing::temp_dir dir;
  std::filesystem::path marker = dir.path() / "stopped";
  // a child that, like runbook, turns SIGTERM into a clean stop with its own exit code
  std::filesystem::path polite = dir.write("polite", "#!/bin/sh\ntrap 'touch " + marker.string() + "; exit 130' TERM\n"
                                                     "while :; do sleep 0.05; done\n");
  std::filesystem::path stubborn = dir.write("stubborn", "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.05; done\n");
  for (const auto& p : {polite, stubborn}) std::filesystem::permissions(p, std::filesystem::perms::owner_all);
  process_launcher a(polite, {});
  long long pid = a.start(nightly(), "2026-12-03T03:00:00Z");
  std::this_thread::sleep_for(200ms);  // let the shell install its trap
  a.terminate(pid);
  EXPECT_EQ(wait_reaped(a, pid), 130);
  EXPECT_TRUE(std::filesystem::exists(marker));
  process_launcher b(stubborn, {});
  pid = b.start(nightly(), "2026-12-03T03:00:00Z");
  std::this_thread::sleep_for(200ms);
  b.terminate(pid);
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(b.reap().empty()) << "ignored SIGTERM";
  b.kill(pid);
  EXPECT_EQ(wait_reaped(b, pid), -SIGKILL);
}

}  // namespace
}  // namespace rb::schedule
