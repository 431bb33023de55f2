// Prometheus textfile: series from a real audit log, the exposition format checked by promtool.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <sys/wait.h>

#include "engine/audit/log.hpp"
#include "engine/error.hpp"
#include "engine/report/prometheus.hpp"
#include "tests/support/temp_dir.hpp"

namespace rb::report {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs a command and returns its exit code and output.
std::pair<int, std::string> run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

metrics from_audit(const std::filesystem::path& file) {
  run_series_builder b;
  audit::for_each_record(file, [&](const nlohmann::json& r) { b.add_record(r); });
  metrics m;
  m.runs = b.take();
  return m;
}

TEST(Prometheus, SeriesComeFromTheAuditLog) {
  rb::testing::temp_dir dir;
  audit::log log(dir.path() / "audit.jsonl");
  auto run = [&](const std::string& id, const std::string& book, const std::string& target, const std::string& status, int ms) {
    log.append(id, "run.start", {{"runbook", book}, {"target", {{"name", target}}}});
    log.append(id, "run.end", {{"status", status}, {"duration_ms", ms}});
  };
  run("r1", "maintenance.daily", "primary", "succeeded", 1500);
  run("r2", "maintenance.daily", "primary", "rolled_back", 250);
  run("r3", "maintenance.daily", "primary", "succeeded", 2000);
  run("r4", "maintenance.daily", "shard-1", "failed", 10);
  metrics m = from_audit(log.path());
  ASSERT_EQ(m.runs.size(), 2u);
  const run_series& primary = m.runs[0];
  EXPECT_EQ(primary.target, "primary");
  EXPECT_EQ(primary.outcomes.at("succeeded"), 2);
  EXPECT_EQ(primary.outcomes.at("rolled_back"), 1);
  EXPECT_DOUBLE_EQ(*primary.last_duration, 2.0);
  EXPECT_TRUE(primary.last_success);
  EXPECT_FALSE(m.runs[1].last_success) << "shard-1 never succeeded";
  std::string text = render(m);
  EXPECT_NE(text.find("runbook_runs_total{runbook=\"maintenance.daily\",target=\"primary\",outcome=\"succeeded\"} 2\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("runbook_last_run_duration_seconds{runbook=\"maintenance.daily\",target=\"primary\"} 2\n"),
            std::string::npos) << text;
}

TEST(Prometheus, TheFilePassesPromtool) {
  rb::testing::temp_dir dir;
  metrics m;
  run_series s;
  s.runbook = "maintenance.\"odd\\name\"";
  s.target = "primary";
  s.last_run = 1780000000.5;
  s.last_success = 1780000000.5;
  s.last_duration = 12.25;
  s.outcomes = {{"succeeded", 3}, {"failed", 1}};
  m.runs.push_back(s);
  m.open_incidents = {{"critical", 1}};
  m.schedules.push_back({"maintenance.daily", "primary", 1780003600});
  write_textfile(dir.path(), render(m));
  std::filesystem::path file = dir.path() / "runbook.prom";
  ASSERT_TRUE(std::filesystem::exists(file));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1) << "no temporary file is left";
  auto [rc, out] = run("promtool check metrics < '" + file.string() + "'");
  EXPECT_EQ(rc, 0) << out << "\n" << slurp(file);
  EXPECT_NE(slurp(file).find("runbook_incidents_open{severity=\"critical\"} 1"), std::string::npos);
  EXPECT_NE(slurp(file).find("runbook=\"maintenance.\\\"odd\\\\name\\\"\""), std::string::npos) << "label values escaped";
}

TEST(Prometheus, AnUnwritableDirectoryIsAnErrorNamingTheFile) {
  try {
    write_textfile("/nonexistent/metrics", "x 1\n");
    FAIL();
  } catch (const error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/metrics/runbook.prom"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rb::report
