// Nothing left behind: a `runbook run --sandbox` killed with SIGKILL leaves its PostgreSQL
// running; `runbook sandbox list` shows it stale, `runbook sandbox clean` stops and removes it,
// and the next `runbook run --sandbox` sweeps it by itself.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <fstream>
#include <thread>

#include "engine/db/sweeper.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using rb::testing::cli_sandbox;
using rb::testing::temp_dir;
using namespace std::chrono_literals;

/// Alive and not a zombie waiting to be reaped.
bool alive(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

bool wait_gone(pid_t pid, std::chrono::milliseconds limit = 10s) {
  for (auto until = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < until;) {
    if (!alive(pid)) return true;
    std::this_thread::sleep_for(20ms);
  }
  return !alive(pid);
}

class SandboxSweep : public ::testing::Test {
 protected:
  temp_dir dir{"rb-sweep"};
  cli_sandbox cli{dir.path()};
  fs::path tmp = dir.path() / "t";  // the children's $TMPDIR: only our own clusters live there
  std::map<std::string, std::string> env{{"TMPDIR", tmp.string()}};
  pid_t child = 0;

  void SetUp() override {
    fs::create_directories(tmp);
    // Under root the server runs as postgres, which must reach its directory.
    fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    fs::permissions(tmp, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    dir.write("runbooks/ops/sleepy.lua", R"lua(runbook "ops.sleepy" {
      phase "p" { step "wait" { run = function(ctx) ctx.db:exec("select pg_sleep(60)") end } },
    })lua");
    dir.write("runbooks/ops/quick.lua", R"lua(runbook "ops.quick" {
      phase "p" { step "one" { run = function(ctx) ctx.db:exec("select 1") end } },
    })lua");
  }

  void TearDown() override {
    if (child > 0 && ::kill(child, SIGKILL) == 0) ::waitpid(child, nullptr, 0);
    rb::db::sweep_stale_sandboxes(tmp);  // whatever a failed test left running
  }

  std::vector<fs::path> clusters() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(tmp))
      if (e.path().filename().string().rfind("runbook-pg-", 0) == 0) out.push_back(e.path());
    return out;
  }

  /// Starts the sleepy run in a sandbox, waits for its step, SIGKILLs it; returns the cluster
  /// directory and the server's pid, still running.
  std::pair<fs::path, pid_t> orphan_a_cluster() {
    child = cli.spawn({"run", "ops.sleepy", "--sandbox"}, env);
    EXPECT_TRUE(cli.wait_for("step.start", "wait", 60s));
    auto found = clusters();
    EXPECT_EQ(found.size(), 1u);
    if (found.size() != 1) return {};
    pid_t server = 0;
    std::ifstream(found[0] / "data" / "postmaster.pid") >> server;
    EXPECT_GT(server, 0);
    EXPECT_TRUE(fs::exists(found[0] / "owner.json"));
    EXPECT_EQ(::kill(child, SIGKILL), 0);
    ::waitpid(child, nullptr, 0);
    child = 0;
    return {found[0], server};
  }
};

TEST_F(SandboxSweep, CleanLeavesALiveOwnersClusterAlone) {
  child = cli.spawn({"run", "ops.sleepy", "--sandbox"}, env);
  ASSERT_TRUE(cli.wait_for("step.start", "wait", 60s));
  auto list = cli.run({"sandbox", "list", "--json"}, env);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto j = nlohmann::json::parse(list.out);
  ASSERT_EQ(j.size(), 1u) << list.out;
  EXPECT_EQ(j[0]["state"], "live");
  EXPECT_EQ(j[0]["pid"], child);
  auto clean = cli.run({"sandbox", "clean"}, env);
  EXPECT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_NE(clean.out.find("removed 0 stale sandbox clusters"), std::string::npos) << clean.out;
  EXPECT_EQ(clusters().size(), 1u);
}

TEST_F(SandboxSweep, SigkilledRunLeavesAStaleClusterThatCleanStopsAndRemoves) {
  auto [cluster_dir, server] = orphan_a_cluster();
  ASSERT_FALSE(cluster_dir.empty());
  EXPECT_TRUE(alive(server)) << "the server outlives its owner: that is what the sweep is for";

  auto list = cli.run({"sandbox", "list", "--json"}, env);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto j = nlohmann::json::parse(list.out);
  ASSERT_EQ(j.size(), 1u) << list.out;
  EXPECT_EQ(j[0]["dir"], cluster_dir.string());
  EXPECT_EQ(j[0]["state"], "stale");
  EXPECT_EQ(j[0]["owner_alive"], false);
  EXPECT_EQ(j[0]["server_pid"], server);
  EXPECT_GT(j[0]["size_bytes"].get<std::uintmax_t>(), 0u);
  auto text = cli.run({"sandbox", "list"}, env);
  EXPECT_NE(text.out.find("stale"), std::string::npos) << text.out;

  auto clean = cli.run({"sandbox", "clean"}, env);
  EXPECT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_NE(clean.out.find("removed 1 stale sandbox cluster"), std::string::npos) << clean.out;
  EXPECT_TRUE(wait_gone(server)) << "the postmaster must be stopped";
  EXPECT_FALSE(fs::exists(cluster_dir));
  EXPECT_EQ(nlohmann::json::parse(cli.run({"sandbox", "list", "--json"}, env).out).size(), 0u);
}

TEST_F(SandboxSweep, TheNextSandboxRunSweepsAStaleClusterByItself) {
  auto [cluster_dir, server] = orphan_a_cluster();
  ASSERT_FALSE(cluster_dir.empty());
  ASSERT_TRUE(alive(server));
  auto r = cli.run({"run", "ops.quick", "--sandbox"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(wait_gone(server));
  EXPECT_FALSE(fs::exists(cluster_dir));
  EXPECT_TRUE(clusters().empty()) << "the second run removes its own cluster too";
}

TEST(SandboxOwner, AReusedPidIsNotTakenForALiveOwner) {
  temp_dir tmp{"rb-owner"};
  fs::path mine = tmp.path() / "runbook-pg-mine", reused = tmp.path() / "runbook-pg-reused";
  fs::create_directories(mine);
  fs::create_directories(reused);
  rb::db::write_owner_file(mine, false);
  auto owner = nlohmann::json::parse(rb::testing::read_file(mine / "owner.json"));
  EXPECT_EQ(owner["pid"], ::getpid());
  owner["start_time"] = owner["start_time"].get<unsigned long long>() + 1;  // same pid, another process
  std::ofstream(reused / "owner.json") << owner.dump();
  auto found = rb::db::list_sandboxes(tmp.path());
  ASSERT_EQ(found.size(), 2u);
  for (const auto& s : found)
    EXPECT_EQ(std::string(rb::db::to_string(s.status)), s.dir == mine ? "live" : "stale") << s.dir;
  auto swept = rb::db::sweep_stale_sandboxes(tmp.path());
  EXPECT_EQ(swept.removed, std::vector<fs::path>{reused});
  EXPECT_TRUE(fs::exists(mine));
}

TEST(SandboxOwner, KeptAndOwnerlessClustersAreNeverSwept) {
  temp_dir tmp{"rb-owner"};
  fs::path kept = tmp.path() / "runbook-pg-kept", ownerless = tmp.path() / "runbook-pg-old";
  fs::create_directories(kept / "data");
  fs::create_directories(ownerless / "data");
  auto owner = nlohmann::json{{"pid", 1}, {"start_time", 1}, {"keep", true}};  // owner gone, but kept
  std::ofstream(kept / "owner.json") << owner.dump();
  fs::last_write_time(ownerless, fs::file_time_type::clock::now() - std::chrono::hours(2));
  auto swept = rb::db::sweep_stale_sandboxes(tmp.path());
  EXPECT_TRUE(swept.removed.empty());
  EXPECT_TRUE(fs::exists(kept));
  EXPECT_TRUE(fs::exists(ownerless));
  for (const auto& s : rb::db::list_sandboxes(tmp.path()))
    EXPECT_EQ(std::string(rb::db::to_string(s.status)), s.dir == kept ? "kept" : "unknown");
}

}  // namespace
