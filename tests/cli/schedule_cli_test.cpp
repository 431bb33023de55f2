// `runbook schedule` for real: scheduler processes, child runs, a registry on a real cluster,
// signals. Due times come from --once --now (pretend it is this time), never from waiting.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "engine/audit/log.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/db_helpers.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::testing::cli_sandbox;
using rb::testing::scalar;
using rb::testing::temp_dir;
using rb::testing::wait_exit;
using namespace std::chrono_literals;

/// "2026-12-03T03:MM:00Z": the i-th minute after 03:00 (a `* * * * *` due time).
std::string minute(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "2026-12-03T%02d:%02d:00Z", 3 + i / 60, i % 60);
  return buf;
}

/// The run.start records of the audit log in state directory `state`.
std::vector<nlohmann::json> starts(const std::filesystem::path& state) {
  std::vector<nlohmann::json> out;
  if (!std::filesystem::exists(state / "audit.jsonl")) return out;
  rb::audit::for_each_record(state / "audit.jsonl", [&](const nlohmann::json& r) {
    if (r.value("event", "") == "run.start") out.push_back(r);
  });
  return out;
}

/// The due time a scheduled run's reason names: "scheduled (* * * * *, due 2026-...Z)".
std::string due_of(const nlohmann::json& start) {
  std::string reason = start.value("reason", "");
  auto at = reason.find("due ");
  return at == std::string::npos ? "" : reason.substr(at + 4, 20);
}

/// Starts `runbook args...` in the sandbox's directory with stderr to `log` (the scheduler's log).
pid_t spawn_logged(const cli_sandbox& cli, const std::vector<std::string>& args, const std::filesystem::path& log) {
  auto env = cli.env();
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDWR);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(out, 2);
    rb::testing::exec_runbook(cli.dir(), env, args);
  }
  return pid;
}

/// Waits up to 20 s for `text` to appear in file `log` (`times` times).
bool wait_for_log(const std::filesystem::path& log, const std::string& text, int times = 1) {
  for (int i = 0; i < 1000; ++i) {
    std::string all = rb::testing::read_file(log);
    int n = 0;
    for (auto at = all.find(text); at != std::string::npos; at = all.find(text, at + 1)) ++n;
    if (n >= times) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

/// A directory with a config whose `primary` target (and registry, when asked) is a fresh
/// database with a ticks table, and the scheduled runbook ops.tick (`* * * * *`) that inserts
/// a tick; the first tick's run waits for advisory lock 42 when `first_waits`.
struct ScheduleCli : ::testing::Test {
  temp_dir dir{"rb-cli-schedule"};
  std::string dsn;
  void SetUp() override { dsn = rb::testing::fresh_database("schedule"); }
  void setup(bool registry, bool first_waits) {
    rb::testing::connect(dsn)->exec("create table ticks (id serial primary key, at timestamptz default now())");
    dir.write("runbook.lua", "return {\n  targets = { primary = { dsn = '" + dsn + "' } },\n" +
                                 std::string(registry ? "  registry = 'primary',\n" : "") + "}\n");
    dir.write("runbooks/ops/tick.lua", std::string(R"lua(runbook "ops.tick" {
      schedule = "* * * * *",
      step "tick" { run = function(ctx)
        local id = ctx.db:scalar("insert into ticks default values returning id")
        )lua") + (first_waits ? R"lua(if id == 1 then ctx.db:exec("select pg_advisory_xact_lock(42)") end)lua" : "") +
                                            R"lua(
      end },
    })lua");
  }
  std::string count(const std::string& sql) { return scalar(*rb::testing::connect(dsn), sql); }
};

TEST_F(ScheduleCli, CheckNamesTheFileAndLineOfABadSchedule) {
  dir.write("runbooks/ops/minute.lua", "-- a comment first\nrunbook \"ops.minute\" {\n  schedule = \"61 * * * *\",\n"
                                       "  step \"s\" { run = function(ctx) end },\n}\n");
  dir.write("runbooks/ops/zone.lua", "runbook \"ops.zone\" {\n  schedule = { cron = \"@daily\", tz = \"Mars/Olympus\" },\n"
                                     "  step \"s\" { run = function(ctx) end },\n}\n");
  dir.write("runbooks/ops/missed.lua", "runbook \"ops.missed\" {\n  schedule = { cron = \"@daily\", missed = \"twice\" },\n"
                                       "  step \"s\" { run = function(ctx) end },\n}\n");
  dir.write("runbooks/ops/param.lua", "runbook \"ops.param\" {\n  params = { n = { type = \"integer\", default = 1 } },\n"
                                      "  schedule = { cron = \"@daily\", params = { n = \"many\" } },\n"
                                      "  step \"s\" { run = function(ctx) end },\n}\n");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"check"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("runbooks/ops/minute.lua:2: runbook 'ops.minute': schedule: cron '61 * * * *': minute: 61 is out of range 0-59"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("runbooks/ops/zone.lua:1: runbook 'ops.zone': schedule: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Mars/Olympus"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("runbooks/ops/missed.lua:1: runbook 'ops.missed': schedule: missed = \"twice\" must be \"skip\""),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("runbooks/ops/param.lua:1: runbook 'ops.param': schedule: params: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("4 of 4 runbooks have errors"), std::string::npos) << r.out;
}

TEST_F(ScheduleCli, ListAndShowGiveTheNextDueTimesInTheirZoneAndInUtc) {
  dir.write("runbooks/ops/nightly.lua", R"lua(runbook "ops.nightly" {
    schedule = { cron = "30 2 * * *", tz = "Europe/Berlin", missed = "once" },
    step "s" { run = function(ctx) end },
  })lua");
  dir.write("runbooks/ops/plain.lua", "runbook \"ops.plain\" { step \"s\" { run = function(ctx) end } }\n");
  cli_sandbox cli(dir.path());
  // 2027-03-28 is a spring-forward in Berlin: 02:30 does not exist that night and runs at 03:00 CEST.
  auto r = cli.run({"schedule", "--list", "--now", "2027-03-26T12:00:00Z", "--next", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("NEXT (ITS ZONE)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ops.nightly"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("ops.plain"), std::string::npos) << "an unscheduled runbook is not listed\n" << r.out;
  EXPECT_NE(r.out.find("30 2 * * * Europe/Berlin once   2027-03-27 02:30 CET  2027-03-27T01:30:00Z"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2027-03-28 03:00 CEST 2027-03-28T01:00:00Z"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2027-03-29 02:30 CEST 2027-03-29T00:30:00Z"), std::string::npos) << r.out;
  auto show = cli.run({"show", "ops.nightly", "--format", "json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  auto j = nlohmann::json::parse(show.out);
  EXPECT_EQ(j["schedule"]["cron"], "30 2 * * *");
  EXPECT_EQ(j["schedule"]["tz"], "Europe/Berlin");
  EXPECT_EQ(j["schedule"]["missed"], "once");
  EXPECT_EQ(j["schedule"]["next"].get<std::string>().size(), 20u) << j.dump();
  auto text = cli.run({"show", "ops.nightly"});
  EXPECT_NE(text.out.find("schedule: 30 2 * * * (Europe/Berlin, missed: once)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("next due "), std::string::npos) << text.out;
}

TEST_F(ScheduleCli, TwoSchedulersSharingARegistryRunEachDueTimeExactlyOnce) {
  setup(/*registry=*/true, /*first_waits=*/false);
  cli_sandbox cli(dir.path());
  std::filesystem::path a = dir.path() / "state-a", b = dir.path() / "state-b";
  constexpr int k_due_times = 20;
  for (int i = 0; i < k_due_times; ++i) {
    pid_t pa = cli.spawn({"schedule", "--once", "--now", minute(i), "--state-dir", a.string()});
    pid_t pb = cli.spawn({"schedule", "--once", "--now", minute(i), "--state-dir", b.string()});
    ASSERT_EQ(wait_exit(pa, 60s), 0) << minute(i);
    ASSERT_EQ(wait_exit(pb, 60s), 0) << minute(i);
  }
  std::map<std::string, int> runs;
  for (const auto& state : {a, b})
    for (const auto& s : starts(state)) ++runs[due_of(s)];
  ASSERT_EQ(runs.size(), static_cast<std::size_t>(k_due_times));
  for (int i = 0; i < k_due_times; ++i) EXPECT_EQ(runs[minute(i)], 1) << minute(i);
  EXPECT_GT(starts(a).size(), 0u) << "both schedulers took part (A never won)";
  EXPECT_GT(starts(b).size(), 0u) << "both schedulers took part (B never won)";
  EXPECT_EQ(count("select count(*) from ticks"), std::to_string(k_due_times));
  EXPECT_EQ(count("select count(*) from runbook.claims where status = 'succeeded'"), std::to_string(k_due_times));
}

TEST_F(ScheduleCli, OnceExitsOneWhenARunItStartedFailedAndLogsJsonLines) {
  dir.write("runbooks/ops/broken.lua", R"lua(runbook "ops.broken" {
    schedule = { cron = "*/5 * * * *", params = { what = "disk" } },
    params = { what = { type = "string", default = "x" } },
    step "s" { run = function(ctx) error("no " .. ctx.params.what) end },
  })lua");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"schedule", "--once", "--now", minute(5), "--log-format", "json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  std::vector<nlohmann::json> lines;
  std::size_t at = 0;
  for (std::size_t nl; (nl = r.err.find('\n', at)) != std::string::npos; at = nl + 1)
    if (r.err[at] == '{') lines.push_back(nlohmann::json::parse(r.err.substr(at, nl - at)));
  std::vector<std::string> events;
  for (const auto& l : lines) events.push_back(l.value("event", ""));
  EXPECT_EQ(events, (std::vector<std::string>{"schedule.ready", "schedule.start", "schedule.end", "schedule.stopped"})) << r.err;
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[2]["outcome"], "failed");
  EXPECT_EQ(lines[2]["due"], minute(5));
  EXPECT_EQ(cli.events("run.start").at(0)["params"]["what"], "disk");
  EXPECT_EQ(cli.events("run.end").at(0)["status"], "failed");
  // Not due at 03:06: nothing starts, and that is a success.
  EXPECT_EQ(cli.run({"schedule", "--once", "--now", minute(6)}).exit_code, 0);
  EXPECT_EQ(cli.events("run.start").size(), 1u);
}

TEST_F(ScheduleCli, ARunThatOutlastsItsIntervalIsNotStartedTwice) {
  setup(/*registry=*/true, /*first_waits=*/true);
  cli_sandbox cli(dir.path());
  auto admin = rb::testing::connect(dsn);
  admin->exec("select pg_advisory_lock(42)");
  pid_t first = cli.spawn({"schedule", "--once", "--now", minute(0), "--state-dir", (dir.path() / "state-a").string()});
  int backend = rb::testing::wait_until_some_backend_runs(*admin, "select pg_advisory_xact_lock(42)");
  rb::testing::wait_until_blocked(*admin, backend);
  // The next due time comes while the first run is still going: another scheduler skips it.
  auto second = cli.run({"schedule", "--once", "--now", minute(1), "--state-dir", (dir.path() / "state-b").string()});
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find("schedule.skip"), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("its run of " + minute(0) + " is still going"), std::string::npos) << second.err;
  EXPECT_EQ(second.err.find("schedule.start"), std::string::npos) << second.err;
  admin->exec("select pg_advisory_unlock(42)");
  EXPECT_EQ(wait_exit(first, 60s), 0);
  EXPECT_EQ(count("select count(*) from ticks"), "1");
  EXPECT_EQ(count("select string_agg(status, ',') from runbook.claims"), "succeeded");
}

TEST_F(ScheduleCli, AKilledSchedulersClaimIsVisiblyDeadAndTheNextDueTimeRuns) {
  setup(/*registry=*/true, /*first_waits=*/true);
  cli_sandbox cli(dir.path());
  std::filesystem::path a = dir.path() / "state-a";
  auto admin = rb::testing::connect(dsn);
  admin->exec("select pg_advisory_lock(42)");
  pid_t first = cli.spawn({"schedule", "--once", "--now", minute(0), "--state-dir", a.string()});
  int backend = rb::testing::wait_until_some_backend_runs(*admin, "select pg_advisory_xact_lock(42)");
  rb::testing::wait_until_blocked(*admin, backend);
  std::string scheduler_backend = count("select backend_pid from runbook.claims");
  ::kill(first, SIGKILL);
  EXPECT_EQ(wait_exit(first, 20s), -1);
  rb::testing::wait_until_gone(*admin, std::stoi(scheduler_backend));

  auto next = cli.run({"schedule", "--once", "--now", minute(1), "--state-dir", (dir.path() / "state-b").string()});
  EXPECT_EQ(next.exit_code, 0) << next.err;
  EXPECT_NE(next.err.find("schedule.start due=" + minute(1)), std::string::npos) << next.err;
  EXPECT_EQ(count("select count(*) from ticks"), "2") << "the orphaned first run still waits; the second ran";
  EXPECT_EQ(count("select status from runbook.claims where due = '" + minute(0) + "'"), "lost");
  EXPECT_EQ(count("select status from runbook.claims where due = '" + minute(1) + "'"), "succeeded");
  std::string orphan = count("select pid from runbook.claims where due = '" + minute(0) + "'");
  auto claims = cli.run({"schedule", "--claims"});
  EXPECT_EQ(claims.exit_code, 0) << claims.err;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  EXPECT_NE(claims.out.find(minute(0) + "  ops.tick / primary"), std::string::npos) << claims.out;
  EXPECT_NE(claims.out.find("lost        " + std::string(host) + " / " + orphan), std::string::npos) << claims.out;
  EXPECT_NE(claims.out.find("gone (claim lost)"), std::string::npos) << claims.out;

  // The orphaned run (its scheduler died, it did not) finishes once the lock is free.
  admin->exec("select pg_advisory_unlock(42)");
  bool ended = false;
  for (int i = 0; i < 1000 && !ended; ++i) {
    for (const auto& s : {a}) {
      if (!std::filesystem::exists(s / "audit.jsonl")) continue;
      rb::audit::for_each_record(s / "audit.jsonl", [&](const nlohmann::json& r) { ended = ended || r.value("event", "") == "run.end"; });
    }
    if (!ended) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(ended);
}

TEST_F(ScheduleCli, SigtermStopsARunningChildAfterTheGraceItRollsBackAndTheDaemonExitsZero) {
  rb::testing::connect(dsn)->exec("create table marker (id int)");
  dir.write("runbook.lua", "return { targets = { primary = { dsn = '" + dsn + "' } } }\n");
  dir.write("runbooks/ops/slow.lua", R"lua(runbook "ops.slow" {
    schedule = "* * * * *",
    step "mark" {
      run = function(ctx) ctx.db:exec("insert into marker values (1)") end,
      rollback = function(ctx) ctx.db:exec("delete from marker") end,
    },
    step "wait" { run = function(ctx) ctx.db:exec("select pg_sleep(60)") end },
  })lua");
  cli_sandbox cli(dir.path());
  std::filesystem::path log = dir.path() / "scheduler.log";
  pid_t pid = spawn_logged(cli, {"schedule", "--once", "--now", minute(0), "--grace", "2s"}, log);
  ASSERT_TRUE(cli.wait_for("step.start", "wait"));
  auto admin = rb::testing::connect(dsn);
  rb::testing::wait_until_some_backend_runs(*admin, "select pg_sleep(60)");
  ::kill(pid, SIGTERM);
  std::chrono::milliseconds took{};
  EXPECT_EQ(wait_exit(pid, 60s, &took), 0) << rb::testing::read_file(log);
  EXPECT_GE(took, 2s) << "the child had its grace period";
  std::string text = rb::testing::read_file(log);
  EXPECT_NE(text.find("schedule.stopping grace_s=2 running=1 signal=SIGTERM"), std::string::npos) << text;
  EXPECT_NE(text.find("schedule.cancel"), std::string::npos) << text;
  EXPECT_NE(text.find("outcome=cancelled"), std::string::npos) << text;
  EXPECT_EQ(text.find("schedule.kill"), std::string::npos) << "it stopped within the second grace period\n" << text;
  auto end = cli.events("run.end").at(0);
  EXPECT_EQ(end["status"], "cancelled");
  EXPECT_EQ(end["rolled_back"], true);
  EXPECT_EQ(cli.events("run.cancel").at(0)["signal"], SIGTERM);
  EXPECT_EQ(count("select count(*) from marker"), "0") << "the completed step was rolled back";
}

TEST_F(ScheduleCli, SighupReloadsTheCatalogAndKeepsTheOldScheduleOfARunbookBrokenByAnEdit) {
  dir.write("runbooks/ops/yearly.lua", "runbook \"ops.yearly\" { schedule = \"0 0 1 1 *\", step \"s\" { run = function(ctx) end } }\n");
  cli_sandbox cli(dir.path());
  std::filesystem::path log = dir.path() / "scheduler.log";
  pid_t pid = spawn_logged(cli, {"schedule", "--log-format", "json"}, log);
  ASSERT_TRUE(wait_for_log(log, R"("entries":1,"event":"schedule.ready")")) << rb::testing::read_file(log);
  // A second scheduler on the same state directory is refused, naming the first.
  auto second = cli.run({"schedule", "--once"});
  EXPECT_EQ(second.exit_code, 75) << second.err;
  EXPECT_NE(second.err.find("another scheduler (pid " + std::to_string(pid) + ")"), std::string::npos) << second.err;

  dir.write("runbooks/ops/weekly.lua", "runbook \"ops.weekly\" { schedule = \"@weekly\", step \"s\" { run = function(ctx) end } }\n");
  ::kill(pid, SIGHUP);
  ASSERT_TRUE(wait_for_log(log, R"("entries":2,"event":"schedule.reload")")) << rb::testing::read_file(log);
  dir.write("runbooks/ops/yearly.lua", "runbook \"ops.yearly\" { schedule = \"0 0 31 2 *\", step \"s\" { run = function(ctx) end } }\n");
  ::kill(pid, SIGHUP);
  ASSERT_TRUE(wait_for_log(log, R"("entries":2,"event":"schedule.reload")", 2)) << rb::testing::read_file(log);
  EXPECT_NE(rb::testing::read_file(log).find(R"("event":"schedule.runbook_error","kept":"its previous schedule")"),
            std::string::npos) << rb::testing::read_file(log);
  std::string text = rb::testing::read_file(log);
  EXPECT_NE(text.find("runbooks/ops/yearly.lua:1: runbook 'ops.yearly': schedule: cron '0 0 31 2 *'"), std::string::npos) << text;
  ::kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit(pid, 20s), 0);
  EXPECT_NE(rb::testing::read_file(log).find(R"("event":"schedule.stopped")"), std::string::npos);
}

TEST_F(ScheduleCli, TheDaemonWakesToClimbAnIncidentsNextLevel) {
  dir.write("runbook.lua", R"lua(return {
    escalation = { database = { levels = {
      { after = "0m", notify = { "team" } },
      { after = "1s", notify = { "oncall" } },
    } } },
    default_escalation = "database",
  })lua");
  dir.write("runbooks/ops/broken.lua", R"lua(runbook "ops.broken" { step "s" { run = function() error("down") end } })lua");
  dir.write("runbooks/ops/yearly.lua", "runbook \"ops.yearly\" { schedule = \"0 0 1 1 *\", step \"s\" { run = function(ctx) end } }\n");
  cli_sandbox cli(dir.path());
  ASSERT_EQ(cli.run({"run", "ops.broken"}).exit_code, 1);
  ASSERT_EQ(cli.events("incident.open").size(), 1u);
  std::filesystem::path log = dir.path() / "scheduler.log";
  pid_t pid = spawn_logged(cli, {"schedule"}, log);
  // Nothing is due for months: the daemon sleeps until the incident's level 2 falls due.
  ASSERT_TRUE(wait_for_log(log, "incident.escalate")) << rb::testing::read_file(log);
  ASSERT_TRUE(cli.wait_for("incident.escalate"));
  EXPECT_EQ(cli.events("incident.escalate").back()["level"], 2);
  ::kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit(pid, 20s), 0);
  EXPECT_EQ(cli.events("incident.escalate").size(), 1u) << "one climb, by one process";
  EXPECT_EQ(cli.run({"audit", "verify"}).exit_code, 0);
}

}  // namespace
