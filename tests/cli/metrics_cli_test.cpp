// Prometheus metrics after runs through the CLI: --metrics-dir (or metrics_dir in the config)
// rewrites runbook.prom from the audit log when a run ends; promtool accepts it.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "tests/support/cli.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using rb::testing::cli_sandbox;
using rb::testing::temp_dir;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// promtool's exit code and what it said about the file.
std::pair<int, std::string> promtool_check(const std::filesystem::path& file) {
  std::string out;
  FILE* p = ::popen(("promtool check metrics < '" + file.string() + "' 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

void write_runbooks(temp_dir& dir) {
  dir.write("runbooks/ops/good.lua", R"lua(runbook "ops.good" {
    step "s" { run = function(ctx) ctx.db:scalar("select 1") end },
  })lua");
  dir.write("runbooks/ops/bad.lua", R"lua(runbook "ops.bad" {
    step "s" { run = function(ctx) error("this one fails") end },
  })lua");
  dir.write("runbooks/ops/guarded.lua", R"lua(runbook "ops.guarded" {
    guard = function(ctx) return false, "not now" end,
    step "s" { run = function(ctx) end },
  })lua");
}

TEST(MetricsCli, RunsRewriteTheTextfileWithTheirOutcomesAndOpenIncidents) {
  temp_dir dir{"rb-cli-metrics"};
  std::string dsn = rb::testing::fresh_database("metrics_cli");
  dir.write("runbook.lua", "return {\n"
                           "  targets = { primary = { dsn = '" + dsn + "' } },\n"
                           "  channels = { ops = { type = 'log' } },\n"
                           "  escalation = { database = { levels = { { after = '0m', notify = { 'ops' } } } } },\n"
                           "  default_escalation = 'database',\n"
                           "}\n");
  write_runbooks(dir);
  std::filesystem::create_directories(dir.path() / "metrics");
  cli_sandbox cli(dir.path());
  std::string mdir = (dir.path() / "metrics").string();
  EXPECT_EQ(cli.run({"run", "ops.good", "--metrics-dir", mdir}).exit_code, 0);
  EXPECT_EQ(cli.run({"run", "ops.good", "--metrics-dir", mdir}).exit_code, 0);
  auto bad = cli.run({"run", "ops.bad", "--metrics-dir", mdir});
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_EQ(cli.run({"run", "ops.guarded", "--metrics-dir", mdir}).exit_code, 0);

  std::filesystem::path file = dir.path() / "metrics" / "runbook.prom";
  ASSERT_TRUE(std::filesystem::exists(file));
  std::string text = slurp(file);
  auto [rc, said] = promtool_check(file);
  EXPECT_EQ(rc, 0) << said << "\n" << text;
  for (const char* line :
       {"runbook_runs_total{runbook=\"ops.good\",target=\"primary\",outcome=\"succeeded\"} 2\n",
        "runbook_runs_total{runbook=\"ops.bad\",target=\"primary\",outcome=\"failed\"} 1\n",
        "runbook_runs_total{runbook=\"ops.guarded\",target=\"primary\",outcome=\"skipped\"} 1\n",
        "runbook_incidents_open{severity=\"error\"} 1\n", "runbook_incidents_open{severity=\"critical\"} 0\n"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "not in\n" << text;
  EXPECT_NE(text.find("runbook_last_success_timestamp_seconds{runbook=\"ops.good\",target=\"primary\"} "),
            std::string::npos) << text;
  EXPECT_EQ(text.find("runbook_last_success_timestamp_seconds{runbook=\"ops.bad\""), std::string::npos)
      << "ops.bad never succeeded\n" << text;
  EXPECT_NE(text.find("runbook_last_run_timestamp_seconds{runbook=\"ops.bad\",target=\"primary\"} "), std::string::npos);
  // nothing but the textfile (and its lock file, which node_exporter ignores: not *.prom)
  for (const auto& e : std::filesystem::directory_iterator(dir.path() / "metrics"))
    EXPECT_TRUE(e.path().filename() == "runbook.prom" || e.path().filename() == ".runbook.prom.lock") << e.path();
}

TEST(MetricsCli, TheConfigsMetricsDirIsUsedAndAFailureToWriteIsOnlyAWarning) {
  temp_dir dir{"rb-cli-metrics"};
  std::string dsn = rb::testing::fresh_database("metrics_cfg");
  dir.write("runbook.lua", "return { targets = { primary = { dsn = '" + dsn + "' } }, metrics_dir = 'textfile' }\n");
  write_runbooks(dir);
  std::filesystem::create_directories(dir.path() / "textfile");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"run", "ops.good"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string text = slurp(dir.path() / "textfile" / "runbook.prom");
  EXPECT_NE(text.find("runbook_runs_total{runbook=\"ops.good\",target=\"primary\",outcome=\"succeeded\"} 1\n"),
            std::string::npos) << text;

  // a directory that is not there: the run still succeeds, and says what was not written
  auto missing = cli.run({"run", "ops.good", "--metrics-dir", (dir.path() / "nowhere").string()});
  EXPECT_EQ(missing.exit_code, 0) << missing.err;
  EXPECT_NE(missing.out.find("warning: metrics not written"), std::string::npos) << missing.out;
  auto failing = cli.run({"run", "ops.bad", "--metrics-dir", (dir.path() / "nowhere").string()});
  EXPECT_EQ(failing.exit_code, 1) << "the run's own outcome, not the metrics', decides the exit code";

  dir.write("runbook.lua", "return { metrics_dir = 42 }\n");
  auto bad_cfg = cli.run({"run", "ops.good"});
  EXPECT_EQ(bad_cfg.exit_code, 2) << bad_cfg.err;
  EXPECT_NE(bad_cfg.err.find("runbook.lua: metrics_dir must be a directory's path"), std::string::npos) << bad_cfg.err;
}

TEST(MetricsCli, AFleetRunRewritesItForEveryMember) {
  temp_dir dir{"rb-cli-metrics"};
  std::string a = rb::testing::fresh_database("metrics_fleet_a");
  std::string b = rb::testing::fresh_database("metrics_fleet_b");
  dir.write("runbook.lua", "return { targets = { ['shard-a'] = { dsn = '" + a + "' }, ['shard-b'] = { dsn = '" + b +
                               "' } } }\n");
  write_runbooks(dir);
  std::filesystem::create_directories(dir.path() / "m");
  cli_sandbox cli(dir.path());
  std::string mdir = (dir.path() / "m").string();
  auto r = cli.run({"run", "ops.good", "--target", "shard-*", "--parallel", "2", "--metrics-dir", mdir});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string text = slurp(dir.path() / "m" / "runbook.prom");
  EXPECT_NE(text.find("runbook_runs_total{runbook=\"ops.good\",target=\"shard-a\",outcome=\"succeeded\"} 1\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("runbook_runs_total{runbook=\"ops.good\",target=\"shard-b\",outcome=\"succeeded\"} 1\n"),
            std::string::npos) << "two members ending at once: neither is lost\n" << text;
  auto [rc, said] = promtool_check(dir.path() / "m" / "runbook.prom");
  EXPECT_EQ(rc, 0) << said;
}

// The scheduler writes the next due time of every schedule beside the outcomes of the runs it
// started (which write the file too): after `schedule --once`, both are there and promtool
// accepts the file.
TEST(MetricsCli, TheSchedulerWritesEachSchedulesNextDueTime) {
  temp_dir dir{"rb-cli-metrics-schedule"};
  std::string dsn = rb::testing::fresh_database("metrics_schedule");
  dir.write("runbook.lua", "return { targets = { primary = { dsn = '" + dsn + "' } } }\n");
  dir.write("runbooks/ops/every5.lua", R"lua(runbook "ops.every5" {
    schedule = "*/5 * * * *",
    step "s" { run = function(ctx) ctx.db:scalar("select 1") end },
  })lua");
  std::filesystem::create_directories(dir.path() / "metrics");
  cli_sandbox cli(dir.path());
  auto r = cli.run({"schedule", "--once", "--now", "2026-12-03T03:05:00Z", "--metrics-dir", (dir.path() / "metrics").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::filesystem::path file = dir.path() / "metrics" / "runbook.prom";
  std::string text = slurp(file);
  auto [rc, said] = promtool_check(file);
  EXPECT_EQ(rc, 0) << said << "\n" << text;
  // 2026-12-03T03:10:00Z, the next due time after the pretended now
  EXPECT_NE(text.find("runbook_schedule_next_due_timestamp_seconds{runbook=\"ops.every5\",target=\"primary\"} 1796267400"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("runbook_runs_total{runbook=\"ops.every5\",target=\"primary\",outcome=\"succeeded\"} 1"),
            std::string::npos)
      << text;
}

}  // namespace
