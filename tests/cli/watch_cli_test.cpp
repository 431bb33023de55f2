// Watches through the real binary, in real time (every = "100ms"): Ctrl-C during a watch rolls
// back (or not, with --no-rollback); kill -9 mid-watch then `runbook resume` continues the
// remaining time with the triggers' state and never repeats an action taken before the kill;
// a watch killed in the rollback its trigger decided resumes into that rollback, not the watch.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <thread>

#include "engine/db/connection.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/db_helpers.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/receiver.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using nlohmann::json;
using rb::testing::cli_sandbox;
using rb::testing::receiver;
using rb::testing::temp_dir;
using rb::testing::wait_exit;

class WatchCli : public ::testing::Test {
 protected:
  temp_dir dir{"rb-watch-cli"};
  cli_sandbox cli{dir.path()};
  std::string dsn = rb::testing::fresh_database("watch_cli");
  std::map<std::string, std::string> env{{"RUNBOOK_DSN", dsn}};
  rb::db::connection admin{{dsn, "test", "test"}};
  receiver hook{receiver::kind::http, dir.path()};

  void SetUp() override {
    admin.exec("create table metric (name text primary key, v float8)");
    admin.exec("insert into metric values ('x', 0), ('y', 0), ('z', 0)");
    admin.exec("create table work (what text)");
    dir.write("runbook.lua", R"lua(return {
      channels = { hook = { type = "webhook", url = ")lua" + hook.url() + R"lua(" }, ops = { type = "log" } },
      escalation = { database = { levels = { { after = "0m", notify = { "ops" } } } } },
      default_escalation = "database",
    })lua");
  }

  /// Writes runbook "mon.t": step "work" (its rollback waits while the table `hold` has a row,
  /// so a test can kill the process inside it), then `watch`.
  void book(const std::string& watch) {
    dir.write("runbooks/mon/t.lua", R"lua(runbook "mon.t" {
  step "work" {
    run = function(ctx) ctx.db:exec("insert into work values ('step')") end,
    rollback = function(ctx)
      ctx.db:exec("insert into work values ('undo started')")
      while ctx.db:scalar("select count(*) from hold") > 0 do ctx.db:exec("select pg_sleep(0.05)") end
      ctx.db:exec("delete from work where what = 'step'")
    end,
  },
)lua" + watch + "\n}\n");
    admin.exec("create table if not exists hold (id int)");
  }

  long long count(const std::string& sql) { return std::stoll(rb::testing::scalar(admin, sql)); }
  /// decision records of `trigger` with this decision.
  std::vector<json> decisions(const std::string& trigger, const std::string& decision) const {
    std::vector<json> out;
    for (const auto& d : cli.events("decision"))
      if (d.value("trigger", "") == trigger && d.value("decision", "") == decision) out.push_back(d);
    return out;
  }
  /// Kills `pid` with SIGKILL and reaps it.
  static void crash(pid_t pid) {
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int st = 0;
    ::waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFSIGNALED(st));
  }
};

constexpr const char* k_quiet = R"lua(watch "after" {
  every = "100ms", lasting = "60s",
  metrics = { x = [[select v from metric where name = 'x']] },
  trigger "high" { when = "x > 10", action = "rollback" },
})lua";

TEST_F(WatchCli, CtrlCDuringAWatchRollsBackAndEndsCancelled) {
  book(k_quiet);
  pid_t pid = cli.spawn({"run", "mon.t"}, env);
  ASSERT_TRUE(cli.wait_for("watch.start"));
  ::kill(pid, SIGINT);
  std::chrono::milliseconds took{};
  EXPECT_EQ(wait_exit(pid, std::chrono::seconds(20), &took), 130);
  EXPECT_LT(took, std::chrono::seconds(10)) << "the watch stops at once, not after its 60 s";
  EXPECT_EQ(count("select count(*) from work where what = 'step'"), 0);
  EXPECT_EQ(cli.events("watch.end").at(0)["end"], "cancelled");
  EXPECT_EQ(cli.events("rollback.end", "work").at(0)["status"], "succeeded");
  json end = cli.events("run.end").at(0);
  EXPECT_EQ(end["status"], "cancelled");
  EXPECT_EQ(end["rolled_back"], true);
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
}

TEST_F(WatchCli, CtrlCWithNoRollbackLeavesTheWorkInPlace) {
  book(k_quiet);
  pid_t pid = cli.spawn({"run", "mon.t", "--no-rollback"}, env);
  ASSERT_TRUE(cli.wait_for("watch.start"));
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_exit(pid, std::chrono::seconds(20)), 130);
  EXPECT_EQ(count("select count(*) from work where what = 'step'"), 1);
  EXPECT_TRUE(cli.events("rollback.start").empty());
  EXPECT_EQ(cli.events("run.end").at(0)["status"], "cancelled");
}

TEST_F(WatchCli, KillDashNineThenResumeKeepsTheTriggersStateAndRepeatsNoAction) {
  // From the first sample: x high (an alert, once), y high (sustained 6 s, then escalate),
  // z low (investigated for 4 s, then escalate). The process is killed once the alert arrived
  // and the investigation began.
  admin.exec("update metric set v = 20 where name in ('x', 'y')");
  admin.exec("update metric set v = -1 where name = 'z'");
  book(R"lua(watch "after" {
  every = "100ms", lasting = "10s",
  metrics = { x = [[select v from metric where name = 'x']], y = [[select v from metric where name = 'y']],
              z = [[select v from metric where name = 'z']] },
  trigger "hot" { when = "x > 10", action = alert{ severity = "warning", summary = "x is hot", channel = "hook" } },
  trigger "slow burn" { when = "y > 10", sustained = "6s", action = escalate{ summary = "y stayed high", cause = "y" } },
  trigger "low" { when = "z < 0",
    action = investigate{ window = "4s", unless = "z >= 0", action = escalate{ summary = "z stayed low", cause = "z" } } },
})lua");
  pid_t pid = cli.spawn({"run", "mon.t"}, env);
  ASSERT_TRUE(hook.wait_for(1));
  for (int i = 0; i < 1000 && decisions("low", "investigation_started").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(decisions("low", "investigation_started").size(), 1u);
  crash(pid);
  ASSERT_TRUE(cli.events("run.end").empty());
  ASSERT_TRUE(cli.events("watch.end").empty());
  long long holding_since = -1;
  for (const auto& s : cli.events("sample"))
    if (s["state"]["slow burn"].contains("holding_since_ms")) holding_since = s["state"]["slow burn"]["holding_since_ms"];
  ASSERT_GE(holding_since, 0) << "the sustained window's start was journaled";
  // The process stays down 1.5 s (a crash is not restarted at once): long enough, against the
  // 100 ms samples, that a window restarted at the resume would end visibly later than one
  // continued from before the kill.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));

  std::string run_id = cli.events("run.start").at(0)["run"];
  auto r = cli.run({"resume", run_id}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_EQ(cli.events("watch.resume").size(), 1u);
  json resumed = cli.events("watch.resume").at(0);
  long long resumed_at = resumed["elapsed_ms"];
  ASSERT_GE(resumed_at, 1500) << "the elapsed time counts the time the process was down";
  EXPECT_EQ(resumed["state"]["hot"]["armed"], false);
  EXPECT_EQ(resumed["state"]["slow burn"]["holding_since_ms"], holding_since);
  EXPECT_TRUE(resumed["state"]["low"].contains("investigating_since_ms"));

  // The alert taken before the kill is not taken again: one delivery, one decision.
  EXPECT_EQ(hook.requests().size(), 1u);
  EXPECT_EQ(decisions("hot", "fired").size(), 1u);
  // The investigation went on from where it was: not started again, and it ended within its
  // 4 s counted from before the kill.
  EXPECT_EQ(decisions("low", "investigation_started").size(), 1u);
  auto expired = decisions("low", "investigation_expired");
  ASSERT_EQ(expired.size(), 1u);
  long long started = decisions("low", "investigation_started").at(0)["elapsed_ms"];
  EXPECT_GE(expired[0]["elapsed_ms"].get<long long>(), started + 4000);
  EXPECT_LT(expired[0]["elapsed_ms"].get<long long>(), resumed_at + 4000);
  // The sustained window too: it fired 6 s after it began before the kill.
  auto burned = decisions("slow burn", "fired");
  ASSERT_EQ(burned.size(), 1u);
  EXPECT_GE(burned[0]["elapsed_ms"].get<long long>(), holding_since + 6000);
  EXPECT_LT(burned[0]["elapsed_ms"].get<long long>(), resumed_at + 6000);
  // Each escalation opened its incident once.
  auto opened = cli.events("incident.open");
  ASSERT_EQ(opened.size(), 2u);
  // The watch continued the remaining time: nothing after the resume counts from zero again.
  bool after = false;
  for (const auto& rec : cli.records()) {
    if (rec.value("event", "") == "watch.resume") after = true;
    if (after && rec.contains("elapsed_ms") && rec.value("event", "") != "watch.resume") {
      EXPECT_GE(rec["elapsed_ms"].get<long long>(), resumed_at) << rec.dump();
    }
    if (after && rec.value("event", "") == "sample.summary") {
      EXPECT_GE(rec["from_ms"].get<long long>(), resumed_at) << rec.dump();
    }
  }
  EXPECT_EQ(cli.events("watch.end").at(0)["end"], "completed");
  EXPECT_EQ(cli.events("run.end").at(0)["status"], "succeeded");
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
}

TEST_F(WatchCli, AWatchKilledInTheRollbackItDecidedResumesIntoThatRollback) {
  book(k_quiet);
  admin.exec("insert into hold values (1)");
  pid_t pid = cli.spawn({"run", "mon.t"}, env);
  ASSERT_TRUE(cli.wait_for("watch.start"));
  admin.exec("update metric set v = 20 where name = 'x'");
  ASSERT_TRUE(cli.wait_for("rollback.start", "work"));
  for (int i = 0; i < 1000 && count("select count(*) from work where what = 'undo started'") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  crash(pid);
  ASSERT_EQ(decisions("high", "fired").size(), 1u);
  ASSERT_TRUE(cli.events("run.end").empty());
  std::size_t samples = cli.events("sample").size();
  admin.exec("delete from hold");

  std::string run_id = cli.events("run.start").at(0)["run"];
  auto r = cli.run({"resume", run_id}, env);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;  // rolled back
  EXPECT_TRUE(cli.events("watch.resume").empty()) << "the watch does not sample again";
  EXPECT_EQ(cli.events("sample").size(), samples);
  EXPECT_EQ(decisions("high", "fired").size(), 1u);
  EXPECT_EQ(count("select count(*) from work where what = 'step'"), 0);
  json end = cli.events("run.end").at(0);
  EXPECT_EQ(end["status"], "rolled_back");
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
}

TEST_F(WatchCli, AWatchCrashedRightAfterJournalingARollbackDecisionResumesIntoTheRollback) {
  // The crash image of a process killed the instant its rollback decision was durable: the
  // journal up to that record (and the head file naming it, as the synced write left them),
  // the database as it was then. Made from a real run, cut where the crash would have cut it.
  book(k_quiet);
  admin.exec("update metric set v = 20 where name = 'x'");
  auto full = cli.run({"run", "mon.t"}, env);
  ASSERT_EQ(full.exit_code, 1) << full.out << full.err;
  std::vector<std::string> lines;
  {
    std::ifstream in(cli.audit_log());
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  std::size_t cut = 0;
  json decided;
  for (std::size_t i = 0; i < lines.size() && decided.is_null(); ++i) {
    json r = json::parse(lines[i]);
    if (r.value("event", "") == "decision" && r.value("ends", "") == "rollback") {
      cut = i + 1;
      decided = r;
    }
  }
  ASSERT_FALSE(decided.is_null());
  temp_dir crashed{"rb-watch-crash"};
  std::string journal;
  for (std::size_t i = 0; i < cut; ++i) journal += lines[i] + "\n";
  crashed.write("state/audit.jsonl", journal);
  crashed.write("state/audit.jsonl.head", json{{"seq", decided["seq"]}, {"hash", decided["hash"]}}.dump() + "\n");
  crashed.write("runbook.lua", rb::testing::read_file(dir.path() / "runbook.lua"));
  crashed.write("runbooks/mon/t.lua", rb::testing::read_file(dir.path() / "runbooks/mon/t.lua"));
  admin.exec("delete from work");
  admin.exec("insert into work values ('step')");
  cli_sandbox after_crash(crashed.path());
  ASSERT_EQ(after_crash.run({"audit", "verify"}).exit_code, 0);
  std::size_t samples = after_crash.events("sample").size();

  std::string run_id = decided["run"];
  auto r = after_crash.run({"resume", run_id}, env);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(after_crash.events("watch.resume").empty()) << "the watch does not sample again";
  EXPECT_EQ(after_crash.events("sample").size(), samples);
  EXPECT_EQ(after_crash.events("decision").size(), 1u) << "the decision is not taken again";
  EXPECT_EQ(after_crash.events("rollback.end", "work").at(0)["status"], "succeeded");
  EXPECT_EQ(count("select count(*) from work where what = 'step'"), 0);
  EXPECT_EQ(count("select count(*) from work where what = 'undo started'"), 1);
  json end = after_crash.events("run.end").at(0);
  EXPECT_EQ(end["status"], "rolled_back");
  EXPECT_NE(end.dump().find("trigger 'high'"), std::string::npos) << end.dump();
  EXPECT_EQ(after_crash.run({"audit", "verify"}).exit_code, 0);
}

}  // namespace
