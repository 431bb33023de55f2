// Incidents and their escalation on a fake clock: levels on time, acknowledgement, dedup,
// resolve semantics, state read back from the journal, and two processes racing to climb.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include "engine/audit/log.hpp"
#include "engine/error.hpp"
#include "engine/incident/escalator.hpp"
#include "tests/incident/recording_notifier.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using rb::incident::escalator;
using rb::incident::open_request;
using rb::incident::policy;
using rb::incident::store;
using rb::testing::fake_clock;
using rb::testing::recording_notifier;
using rb::testing::temp_dir;

/// Seed 003's chain: the team lead at once, the DBA after 5 minutes, the director after 15.
policy database_policy() {
  json spec = {{"levels", json::array({{{"after", "0m"}, {"notify", {"team"}}},
                                       {{"after", "5m"}, {"notify", {"oncall"}}},
                                       {{"after", "15m"}, {"notify", {"oncall", "dba"}}}})}};
  return policy::from_config("database", spec, "runbook.lua");
}

class Escalation : public ::testing::Test {
 protected:
  temp_dir dir{"rb-incident"};
  rb::audit::log journal{dir.path() / "audit.jsonl"};
  policy p = database_policy();
  fake_clock clk;
  recording_notifier sent;
  store incidents{journal};
  escalator esc{incidents, &sent, clk};

  open_request failure(const std::string& runbook = "migration.x", const std::string& target = "primary") {
    open_request r;
    r.runbook = runbook;
    r.target = target;
    r.cause = "run failed";
    r.summary = "runbook " + runbook + " rolled_back on " + target;
    r.escalation = &p;
    return r;
  }
  std::vector<json> records(const std::string& event) {
    std::vector<json> out;
    rb::audit::for_each_record(journal.path(), [&](const json& r) {
      if (r["event"] == event) out.push_back(r);
    });
    return out;
  }
};

TEST_F(Escalation, LevelOneIsToldAtOnce) {
  auto r = esc.open_or_join(failure());
  ASSERT_TRUE(r.what.changed);
  EXPECT_EQ(r.what.inc.id.rfind("INC-", 0), 0u);
  EXPECT_EQ(r.what.inc.id.size(), 10u);
  ASSERT_EQ(sent.all().size(), 1u);
  EXPECT_EQ(sent.all()[0].channel, "team");
  EXPECT_EQ(sent.all()[0].n.action, "trigger");
  EXPECT_EQ(sent.all()[0].n.level, 1);
  EXPECT_EQ(sent.all()[0].n.incident, r.what.inc.id);
  EXPECT_EQ(sent.all()[0].n.dedup, r.what.inc.dedup);
  EXPECT_EQ(sent.all()[0].n.runbook, "migration.x");
  EXPECT_EQ(records("incident.open").size(), 1u);
}

TEST_F(Escalation, LevelTwoAfterFiveMinutesUnacknowledgedAndLevelThreeAfterFifteen) {
  auto started = std::chrono::steady_clock::now();
  auto id = esc.open_or_join(failure()).what.inc.id;
  sent.clear();
  clk.advance(4min + 59s);
  EXPECT_TRUE(esc.advance().empty());
  EXPECT_TRUE(sent.all().empty());
  clk.advance(1s);
  auto climbed = esc.advance();
  ASSERT_EQ(climbed.size(), 1u);
  EXPECT_EQ(climbed[0].what.inc.level, 2);
  ASSERT_EQ(sent.all().size(), 1u);
  EXPECT_EQ(sent.all()[0].channel, "oncall");
  EXPECT_EQ(sent.all()[0].n.level, 2);
  EXPECT_TRUE(esc.advance().empty());  // advancing again tells nobody twice
  clk.advance(10min);
  ASSERT_EQ(esc.advance().size(), 1u);
  EXPECT_EQ(sent.to("oncall").size(), 2u);
  EXPECT_EQ(sent.to("dba").size(), 1u);
  clk.advance(5min);  // the 20th minute: nothing left to climb
  EXPECT_TRUE(esc.advance().empty());
  EXPECT_EQ(incidents.find(id)->level, 3);
  EXPECT_EQ(records("incident.escalate").size(), 2u);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);  // 20 minutes, on the fake clock
}

TEST_F(Escalation, AcknowledgedAtMinuteFourNeverReachesLevelTwo) {
  auto id = esc.open_or_join(failure()).what.inc.id;
  clk.advance(4min);
  auto acked = esc.ack(id, "alice", "looking");
  ASSERT_TRUE(acked.what.changed);
  EXPECT_EQ(acked.what.inc.state, "acknowledged");
  ASSERT_EQ(sent.to("team").size(), 2u);
  EXPECT_EQ(sent.to("team")[1].action, "acknowledge");
  EXPECT_EQ(sent.to("team")[1].dedup, sent.to("team")[0].dedup);  // PagerDuty acknowledges the same alert
  clk.advance(1min);
  EXPECT_TRUE(esc.advance().empty());
  clk.advance(30min);
  EXPECT_TRUE(esc.advance().empty());
  EXPECT_TRUE(sent.to("oncall").empty());
  EXPECT_TRUE(records("incident.escalate").empty());
  EXPECT_FALSE(esc.ack(id, "bob", "").what.changed);  // acknowledging again changes nothing
}

TEST_F(Escalation, ARepeatedFailureJoinsTheOpenIncident) {
  auto first = esc.open_or_join(failure());
  clk.advance(1min);
  auto second = esc.open_or_join(failure());
  EXPECT_EQ(first.what.inc.id, second.what.inc.id);
  EXPECT_FALSE(second.what.changed);
  EXPECT_EQ(records("incident.open").size(), 1u);
  EXPECT_EQ(sent.all().size(), 1u);
  // A worse failure raises the joined incident's severity, and tells the current level once.
  auto worse = failure();
  worse.severity = "critical";
  auto third = esc.open_or_join(worse);
  EXPECT_TRUE(third.what.changed);
  EXPECT_EQ(third.what.inc.id, first.what.inc.id);
  EXPECT_EQ(third.what.inc.severity, "critical");
  EXPECT_EQ(sent.all().size(), 2u);
}

TEST_F(Escalation, DifferentTargetsAndRunbooksNeverShareAnIncident) {
  auto a = esc.open_or_join(failure("migration.x", "primary")).what.inc;
  auto b = esc.open_or_join(failure("migration.x", "staging")).what.inc;
  auto c = esc.open_or_join(failure("migration.y", "primary")).what.inc;
  // Names that run together the same way stay apart too.
  auto d = esc.open_or_join(failure("a/b", "c")).what.inc;
  auto e = esc.open_or_join(failure("a", "b/c")).what.inc;
  std::set<std::string> ids = {a.id, b.id, c.id, d.id, e.id}, keys = {a.dedup, b.dedup, c.dedup, d.dedup, e.dedup};
  EXPECT_EQ(ids.size(), 5u);
  EXPECT_EQ(keys.size(), 5u);
  EXPECT_EQ(records("incident.open").size(), 5u);
}

TEST_F(Escalation, ResolveAfterResolveIsANoOpAndAnAckAfterItChangesNothing) {
  auto id = esc.open_or_join(failure()).what.inc.id;
  auto r1 = esc.resolve(id, "alice", "fixed");
  EXPECT_TRUE(r1.what.changed);
  EXPECT_EQ(sent.to("team").back().action, "resolve");
  auto r2 = esc.resolve(id, "alice", "");
  EXPECT_FALSE(r2.what.changed);
  EXPECT_EQ(r2.what.why, "already resolved");
  EXPECT_FALSE(esc.ack(id, "bob", "").what.changed);  // the resolve wins
  EXPECT_EQ(incidents.find(id)->state, "resolved");
  EXPECT_EQ(records("incident.resolve").size(), 1u);
  EXPECT_TRUE(records("incident.ack").empty());
  // After a resolve the same failure opens a new incident (PagerDuty opens a new alert).
  auto again = esc.open_or_join(failure()).what.inc;
  EXPECT_NE(again.id, id);
  EXPECT_EQ(again.state, "open");
}

TEST_F(Escalation, AnAckThatLosesTheRaceToAResolveDoesNotReopen) {
  auto id = esc.open_or_join(failure()).what.inc.id;
  // Another process resolves between this process's last look and its ack.
  rb::audit::log other_journal(journal.path());
  store other(other_journal);
  fake_clock other_clock;
  escalator other_esc(other, nullptr, other_clock);
  EXPECT_TRUE(other_esc.resolve(id, "carol", "").what.changed);
  auto acked = esc.ack(id, "bob", "");
  EXPECT_FALSE(acked.what.changed);
  EXPECT_EQ(acked.what.inc.state, "resolved");
}

TEST_F(Escalation, StateSurvivesARestartAndKeepsThePolicyItOpenedWith) {
  auto id = esc.open_or_join(failure()).what.inc.id;
  p.levels[1].notify = {"dba"};  // the config changes after the incident opened
  // A new process: its own journal handle, store and escalator read the journal back.
  rb::audit::log journal2(journal.path());
  store incidents2(journal2);
  recording_notifier sent2;
  escalator esc2(incidents2, &sent2, clk);
  ASSERT_NE(incidents2.find(id), nullptr);
  EXPECT_EQ(incidents2.find(id)->state, "open");
  EXPECT_EQ(incidents2.find(id)->escalation.levels[1].notify, std::vector<std::string>{"oncall"});
  clk.advance(5min);
  ASSERT_EQ(esc2.advance().size(), 1u);
  ASSERT_EQ(sent2.all().size(), 1u);
  EXPECT_EQ(sent2.all()[0].channel, "oncall");  // the snapshot, not the edited config
  EXPECT_TRUE(esc.advance().empty());           // the first process sees it was done
  EXPECT_EQ(incidents.find(id)->level, 2);
}

TEST_F(Escalation, TheJournalChainStillVerifiesAfterIncidentRecords) {
  auto id = esc.open_or_join(failure()).what.inc.id;
  clk.advance(6min);
  esc.advance();
  esc.ack(id, "alice", "on it");
  esc.resolve(id, "alice", "done");
  auto v = rb::audit::verify(journal.path(), std::nullopt);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 4u);
}

TEST_F(Escalation, AnUnknownIdIsAUsageErrorWithASuggestion) {
  auto id = esc.open_or_join(failure()).what.inc.id;
  std::string typo = id.substr(0, 9) + (id[9] == '0' ? "1" : "0");
  try {
    esc.ack(typo, "alice", "");
    FAIL() << "no error";
  } catch (const rb::error& e) {
    EXPECT_EQ(e.kind(), rb::error_kind::usage);
    EXPECT_NE(std::string(e.what()).find("did you mean '" + id + "'"), std::string::npos) << e.what();
  }
  std::string lower = id;
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  EXPECT_TRUE(esc.ack(lower, "alice", "").what.changed);  // ids are not case-sensitive
}

TEST_F(Escalation, AChannelTheNotifierRefusesIsAuditedAndTheOthersAreStillTold) {
  json spec = {{"levels", json::array({{{"after", "0m"}, {"notify", {"nowhere", "team"}}}})}};
  policy q = policy::from_config("q", spec, "runbook.lua");
  auto r = failure();
  r.escalation = &q;
  auto res = esc.open_or_join(r);
  EXPECT_EQ(sent.to("team").size(), 1u);
  ASSERT_EQ(res.undelivered.size(), 1u);
  EXPECT_EQ(res.undelivered[0].rfind("nowhere: ", 0), 0u);
  ASSERT_EQ(records("alert.failed").size(), 1u);
  EXPECT_EQ(records("alert.failed")[0]["channel"], "nowhere");
}

TEST(EscalationPolicy, RepeatRunsTheChainAgainAndIsCapped) {
  json spec = {{"levels", json::array({{{"after", "0m"}, {"notify", {"team"}}}, {{"after", "5m"}, {"notify", {"oncall"}}}})},
               {"repeat", 2},
               {"repeat_after", "30m"}};
  policy p = policy::from_config("loop", spec, "runbook.lua");
  EXPECT_EQ(p.total_levels(), 6);
  EXPECT_EQ(p.due_after(3), 30min);
  EXPECT_EQ(p.due_after(4), 35min);
  EXPECT_EQ(p.at(6).notify, std::vector<std::string>{"oncall"});
  spec["repeat"] = 10;
  EXPECT_THROW(policy::from_config("loop", spec, "runbook.lua"), rb::error);
  spec["repeat"] = 1;
  spec.erase("repeat_after");
  EXPECT_THROW(policy::from_config("loop", spec, "runbook.lua"), rb::error);
}

TEST(EscalationPolicy, ConfigMistakesNameTheFileAndPolicy) {
  auto message = [](const json& spec) {
    try {
      policy::from_config("database", spec, "conf/runbook.lua");
    } catch (const rb::error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string m = message({{"levels", json::array({{{"after", "0m"}, {"notfy", {"team"}}}})}});
  EXPECT_NE(m.find("conf/runbook.lua: escalation policy 'database'"), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean 'notify'"), std::string::npos) << m;
  m = message({{"levels", json::array({{{"after", "10m"}, {"notify", {"a"}}}, {{"after", "5m"}, {"notify", {"b"}}}})}});
  EXPECT_NE(m.find("level 2: after is earlier"), std::string::npos) << m;
  m = message({{"levels", json::array()}});
  EXPECT_NE(m.find("needs levels"), std::string::npos) << m;
}

/// Two real processes (forked before any thread starts) advance the same 20 incidents at the
/// same moments; each level is written once and told once per channel.
TEST_F(Escalation, TwoProcessesAdvancingTheSameIncidentsNeverDuplicate) {
  constexpr int k_incidents = 20;
  std::vector<std::string> ids;
  for (int i = 0; i < k_incidents; ++i) ids.push_back(esc.open_or_join(failure("rb" + std::to_string(i))).what.inc.id);
  auto told = dir.path() / "told.txt";
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  std::vector<pid_t> kids;
  for (int k = 0; k < 2; ++k) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);
      int rc = 0;
      {
        rb::audit::log j(journal.path());
        store s(j);
        recording_notifier n({"team", "oncall", "dba"}, told);
        fake_clock c;  // starts at (nearly) the same wall time as the parent's
        escalator e(s, &n, c);
        char b;
        if (::read(go[0], &b, 1) != 1) rc = 3;  // both start together
        c.advance(5min + 1s);
        for (int round = 0; round < 3; ++round) e.advance();
        c.advance(10min);
        for (int round = 0; round < 3; ++round) e.advance();
      }
      ::_exit(rc);
    }
    kids.push_back(pid);
  }
  ::close(go[0]);
  ASSERT_EQ(::write(go[1], "gg", 2), 2);
  ::close(go[1]);
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::map<std::string, int> per_level;
  for (const auto& r : records("incident.escalate")) ++per_level[r["incident"].get<std::string>() + " " + r["level"].dump()];
  EXPECT_EQ(per_level.size(), 2u * k_incidents);
  for (const auto& [k, n] : per_level) EXPECT_EQ(n, 1) << k;
  std::ifstream in(told);
  std::map<std::string, int> lines;
  std::string line;
  int total = 0;
  while (std::getline(in, line)) ++lines[line], ++total;
  EXPECT_EQ(total, 3 * k_incidents);  // level 2: oncall; level 3: oncall and dba
  for (const auto& [l, n] : lines) EXPECT_EQ(n, 1) << l;
  auto v = rb::audit::verify(journal.path(), std::nullopt);
  EXPECT_TRUE(v.ok) << v.problem;
}

}  // namespace
