// Fleet runs with real member processes: parallelism, outcomes, stop-after-failures, cancel-all.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>

#include "engine/error.hpp"
#include "engine/run/fleet.hpp"
#include "tests/support/temp_dir.hpp"

namespace rb::run {
namespace {

/// A stand-in for `runbook run --json`: sleeps, fails on targets named bad-*, prints the
/// outcome line, and records how many members ran at once.
struct member_program {
  rb::testing::temp_dir dir;
  std::filesystem::path program;
  member_program() {
    program = dir.write("member", R"(#!/bin/sh
t="$1"; d=")" + dir.path().string() + R"("
trap 'echo "{\"run\":\"r-$t\",\"status\":\"rolled_back\"}"; exit 1' TERM
touch "$d/running.$t"; sleep 0.1
ls "$d"/running.* 2>/dev/null | wc -l >> "$d/concurrency"
echo "progress for $t" >&2
i=0; while [ $i -lt ${SLEEP:-3} ]; do sleep 0.1; i=$((i+1)); done
rm -f "$d/running.$t"
case "$t" in bad-*) echo "{\"run\":\"r-$t\",\"status\":\"rolled_back\"}"; exit 1;; esac
echo "{\"run\":\"r-$t\",\"status\":\"succeeded\",\"duration_ms\":300}"
)");
    std::filesystem::permissions(program, std::filesystem::perms::owner_all);
    std::filesystem::create_directories(dir.path() / "logs");
  }
  std::function<std::vector<std::string>(const std::string&)> argv() const {
    return [p = program.string()](const std::string& t) { return std::vector<std::string>{p, t}; };
  }
  fleet_options opts(int parallel, int stop_after = 0) const { return fleet_options{parallel, stop_after, dir.path() / "logs"}; }
  int max_concurrency() const {
    std::ifstream in(dir.path() / "concurrency");
    int n = 0, best = 0;
    while (in >> n) best = std::max(best, n);
    return best;
  }
};

std::vector<std::string> statuses(const fleet_result& r) {
  std::vector<std::string> out;
  for (const auto& m : r.members) out.push_back(m.target + "=" + m.status);
  return out;
}

TEST(Fleet, SelectsTargetsByGlobAndListInConfigOrder) {
  std::vector<std::string> known = {"primary", "shard-1", "shard-2", "shard-10", "eu-1"};
  EXPECT_EQ(select_targets("shard-*", known), (std::vector<std::string>{"shard-1", "shard-2", "shard-10"}));
  EXPECT_EQ(select_targets("eu-1,primary,shard-?", known), (std::vector<std::string>{"primary", "shard-1", "shard-2", "eu-1"}));
  EXPECT_TRUE(is_fleet_spec("shard-*"));
  EXPECT_TRUE(is_fleet_spec("a,b"));
  EXPECT_FALSE(is_fleet_spec("primary"));
  try {
    select_targets("shrd-*,primary", known);
    FAIL();
  } catch (const error& e) {
    EXPECT_EQ(e.kind(), error_kind::usage);
    EXPECT_NE(std::string(e.what()).find("no configured target matches 'shrd-*'"), std::string::npos) << e.what();
  }
}

TEST(Fleet, RunsEveryTargetAtMostNAtOnceAndReportsEach) {
  member_program p;
  std::vector<std::string> seen;
  fleet_result r = run_fleet({"a", "b", "bad-c", "d"}, p.argv(), p.opts(2), [] { return false; },
                             [&](const fleet_member& m, bool ended) { if (ended) seen.push_back(m.target); });
  EXPECT_EQ(statuses(r), (std::vector<std::string>{"a=succeeded", "b=succeeded", "bad-c=rolled_back", "d=succeeded"}));
  EXPECT_EQ(r.members[2].run_id, "r-bad-c");
  EXPECT_EQ(r.exit_code(), 4) << "some succeeded, some did not";
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_EQ(p.max_concurrency(), 2);
  std::ifstream log(r.members[0].log);
  std::string line;
  std::getline(log, line);
  EXPECT_EQ(line, "progress for a");
}

TEST(Fleet, StopsStartingAfterKFailures) {
  member_program p;
  fleet_result r = run_fleet({"bad-1", "bad-2", "c", "d"}, p.argv(), p.opts(1, 2), [] { return false; },
                             [](const fleet_member&, bool) {});
  EXPECT_EQ(statuses(r), (std::vector<std::string>{"bad-1=rolled_back", "bad-2=rolled_back", "c=not_started", "d=not_started"}));
  EXPECT_EQ(r.exit_code(), 1) << "none succeeded";
}

TEST(Fleet, AllSucceededIsZero) {
  member_program p;
  fleet_result r = run_fleet({"a", "b"}, p.argv(), p.opts(4), [] { return false; }, [](const fleet_member&, bool) {});
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_EQ(r.to_json()["members"][1]["run"], "r-b");
}

TEST(Fleet, CancelStopsEveryRunningMemberCleanly) {
  member_program p;
  setenv("SLEEP", "100", 1);  // members that would run 10 s
  std::atomic<int> started{0};
  fleet_result r = run_fleet({"a", "b", "c"}, p.argv(), p.opts(2), [&] { return started.load() >= 2; },
                             [&](const fleet_member&, bool ended) { if (!ended) ++started; });
  unsetenv("SLEEP");
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(statuses(r), (std::vector<std::string>{"a=rolled_back", "b=rolled_back", "c=not_started"}));
  EXPECT_EQ(r.exit_code(), 130);
}

}  // namespace
}  // namespace rb::run
