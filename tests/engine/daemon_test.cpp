// The scheduler's decisions on a fake clock: due times, missed runs, overlap, claims, stopping.
#include <gtest/gtest.h>

#include <date/date.h>

#include <cstdio>

#include "engine/schedule/daemon.hpp"

namespace rb::schedule {
namespace {

sys_seconds at(const std::string& utc) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  EXPECT_EQ(std::sscanf(utc.c_str(), "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &se), 6) << utc;
  return date::sys_days(date::year(y) / mo / d) + std::chrono::hours(h) + std::chrono::minutes(mi) +
         std::chrono::seconds(se);
}

/// Child processes as the daemon sees them: started, ended when the test says so.
struct test_launcher : launcher {
  long long next_pid = 100;
  std::vector<std::string> started, terminated, killed;
  std::map<long long, int> ended;
  long long start(const entry& e, const std::string& due) override {
    started.push_back(e.key() + " " + due);
    return next_pid++;
  }
  std::map<long long, int> reap() override { return std::exchange(ended, {}); }
  void terminate(long long pid) override { terminated.push_back(std::to_string(pid)); }
  void kill(long long pid) override { killed.push_back(std::to_string(pid)); }
};

/// Claims as a registry holds them; schedulers sharing `taken` share one registry, each with
/// its own record of what it last checked.
struct test_claims : claims {
  std::shared_ptr<std::set<std::string>> taken = std::make_shared<std::set<std::string>>();
  std::map<std::string, std::string> outcome;
  std::map<std::string, sys_seconds> checked;
  bool try_claim(const entry& e, const std::string& due) override { return taken->insert(e.key() + " " + due).second; }
  void started(const entry&, const std::string&, long long) override {}
  void finished(const entry& e, const std::string& due, const std::string& status) override { outcome[e.key() + " " + due] = status; }
  std::optional<sys_seconds> last_checked(const std::string& key) override {
    auto it = checked.find(key);
    return it == checked.end() ? std::nullopt : std::optional(it->second);
  }
  void set_last_checked(const std::string& key, sys_seconds t) override { checked[key] = t; }
};

entry daily(missed_policy missed = missed_policy::skip) {
  return entry{"maintenance.daily", "primary", cron::parse("0 3 * * *"), missed, json::object()};
}

struct events {
  std::vector<std::string> names;
  std::vector<json> fields;
  event_sink sink() {
    return [this](const std::string& e, json f) {
      names.push_back(e);
      fields.push_back(std::move(f));
    };
  }
  int count(const std::string& e) const { return static_cast<int>(std::count(names.begin(), names.end(), e)); }
};

TEST(Daemon, StartsARunAtItsDueTimeAndSaysWhenTheNextIs) {
  test_launcher l;
  test_claims c;
  events ev;
  daemon d({daily()}, l, c, ev.sink());
  EXPECT_EQ(utc_string(d.tick(at("2026-12-03T02:59:00Z"))), "2026-12-03T03:00:00Z");
  EXPECT_TRUE(l.started.empty());
  EXPECT_EQ(utc_string(d.tick(at("2026-12-03T03:00:02Z"))), "2026-12-04T03:00:00Z");
  EXPECT_EQ(l.started, (std::vector<std::string>{"maintenance.daily@primary 2026-12-03T03:00:00Z"}));
  EXPECT_EQ(d.tick(at("2026-12-03T03:00:30Z")), at("2026-12-04T03:00:00Z"));
  EXPECT_EQ(l.started.size(), 1u) << "one due time, one run";
  l.ended[100] = 0;
  d.tick(at("2026-12-03T03:05:00Z"));
  EXPECT_EQ(c.outcome["maintenance.daily@primary 2026-12-03T03:00:00Z"], "succeeded");
  EXPECT_TRUE(d.running().empty());
}

TEST(Daemon, NeverStartsAnEntryWhoseLastRunIsStillGoing) {
  test_launcher l;
  test_claims c;
  events ev;
  entry every_minute{"monitor.locks", "primary", cron::parse("* * * * *"), missed_policy::skip, json::object()};
  daemon d({every_minute}, l, c, ev.sink());
  d.tick(at("2026-12-03T10:00:00Z"));
  d.tick(at("2026-12-03T10:01:00Z"));
  d.tick(at("2026-12-03T10:02:00Z"));
  EXPECT_EQ(l.started.size(), 1u);
  EXPECT_EQ(ev.count("schedule.skip"), 2);
  EXPECT_NE(ev.fields.back()["reason"].get<std::string>().find("still going"), std::string::npos);
  l.ended[100] = 1;
  d.tick(at("2026-12-03T10:03:00Z"));
  EXPECT_EQ(l.started.size(), 2u);
  EXPECT_EQ(c.outcome["monitor.locks@primary 2026-12-03T10:00:00Z"], "failed");
}

TEST(Daemon, MissedRunsAreSkippedByDefault) {
  test_launcher l;
  test_claims c;
  events ev;
  c.checked["maintenance.daily@primary"] = at("2026-11-30T12:00:00Z");  // down for three days
  daemon d({daily()}, l, c, ev.sink());
  d.tick(at("2026-12-03T12:00:00Z"));
  EXPECT_TRUE(l.started.empty());
  ASSERT_EQ(ev.count("schedule.missed"), 1);
  EXPECT_EQ(ev.fields[0]["missed"], 3);
  EXPECT_EQ(ev.fields[0]["policy"], "skip");
}

TEST(Daemon, MissedOnceRunsTheLatestMissedTimeOnce) {
  test_launcher l;
  test_claims c;
  events ev;
  c.checked["maintenance.daily@primary"] = at("2026-11-30T12:00:00Z");
  daemon d({daily(missed_policy::once)}, l, c, ev.sink());
  d.tick(at("2026-12-03T12:00:00Z"));
  d.tick(at("2026-12-03T12:01:00Z"));
  EXPECT_EQ(l.started, (std::vector<std::string>{"maintenance.daily@primary 2026-12-03T03:00:00Z"}));
}

TEST(Daemon, AFreshStartCountsADueTimeOfTheLastMinute) {
  // a Kubernetes CronJob's pod starts a few seconds after 03:00, with no state of its own
  test_launcher l;
  test_claims c;
  events ev;
  daemon d({daily()}, l, c, ev.sink());
  d.tick(at("2026-12-03T03:00:20Z"));
  EXPECT_EQ(l.started.size(), 1u);
}

TEST(Daemon, SharedClaimsLetOnlyOneSchedulerRunADueTime) {
  test_launcher l1, l2;
  test_claims c1, c2;
  c2.taken = c1.taken;
  events e1, e2;
  daemon a({daily()}, l1, c1, e1.sink()), b({daily()}, l2, c2, e2.sink());
  a.tick(at("2026-12-03T03:00:01Z"));
  b.tick(at("2026-12-03T03:00:01Z"));
  EXPECT_EQ(l1.started.size() + l2.started.size(), 1u);
  EXPECT_EQ(e2.count("schedule.claimed_elsewhere"), 1);
}

TEST(Daemon, StopLetsRunsFinishWithinTheGraceThenCancelsThenKills) {
  test_launcher l;
  test_claims c;
  events ev;
  daemon d({daily()}, l, c, ev.sink());
  d.tick(at("2026-12-03T03:00:00Z"));
  sys_seconds sigterm = at("2026-12-03T03:01:00Z");
  std::chrono::seconds grace(300);
  EXPECT_FALSE(d.stop(at("2026-12-03T03:02:00Z"), sigterm, grace));
  EXPECT_TRUE(l.terminated.empty()) << "inside the grace period the run may finish";
  EXPECT_FALSE(d.stop(at("2026-12-03T03:06:00Z"), sigterm, grace));
  EXPECT_EQ(l.terminated, (std::vector<std::string>{"100"}));
  EXPECT_FALSE(d.stop(at("2026-12-03T03:07:00Z"), sigterm, grace));
  EXPECT_EQ(l.terminated.size(), 1u) << "asked once";
  EXPECT_FALSE(d.stop(at("2026-12-03T03:11:00Z"), sigterm, grace));
  EXPECT_EQ(l.killed, (std::vector<std::string>{"100"}));
  l.ended[100] = -9;
  EXPECT_TRUE(d.stop(at("2026-12-03T03:11:01Z"), sigterm, grace));
  EXPECT_EQ(c.outcome["maintenance.daily@primary 2026-12-03T03:00:00Z"], "killed by signal 9");
}

TEST(Daemon, ExitCodesNameOutcomes) {
  EXPECT_EQ(outcome_for_exit(0), "succeeded");
  EXPECT_EQ(outcome_for_exit(3), "rollback_failed");
  EXPECT_EQ(outcome_for_exit(75), "locked");
  EXPECT_EQ(outcome_for_exit(130), "cancelled");
  EXPECT_EQ(outcome_for_exit(9), "exit 9");
}

}  // namespace
}  // namespace rb::schedule
