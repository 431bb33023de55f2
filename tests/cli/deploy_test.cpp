// The deployment examples in deploy/: systemd units that systemd-analyze accepts, Kubernetes
// manifests that parse and say what the README promises, and a runbook directory mounted
// from a ConfigMap (with its hidden ..data links) that lists each runbook once.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "engine/run/catalog.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;

std::pair<int, std::string> sh(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const fs::path k_deploy = fs::path(RUNBOOK_SOURCE_DIR) / "deploy";

TEST(Deploy, TheSystemdUnitsPassSystemdAnalyzeVerifyWithoutAWord) {
  rb::testing::temp_dir dir{"rb-deploy"};
  // verify checks that ExecStart's program exists: point the copies at the binary just built
  std::string units;
  for (const char* name : {"runbook-scheduler.service", "runbook-schedule.service", "runbook-schedule.timer"}) {
    std::string text = slurp(k_deploy / "systemd" / name);
    ASSERT_FALSE(text.empty()) << name;
    for (std::size_t at; (at = text.find("/usr/local/bin/runbook")) != std::string::npos;)
      text.replace(at, 22, RUNBOOK_BINARY);
    dir.write(name, text);
    units += " '" + (dir.path() / name).string() + "'";
  }
  auto [rc, out] = sh("cd '" + dir.path().string() + "' && systemd-analyze verify" + units);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << "systemd ignores what it warns about: an unknown key or a bad value is a mistake";

  std::string daemon = slurp(k_deploy / "systemd" / "runbook-scheduler.service");
  for (const char* line : {"ExecStart=/usr/local/bin/runbook schedule ", "Restart=on-failure\n", "KillSignal=SIGTERM\n",
                           "KillMode=mixed\n", "TimeoutStopSec=15min\n", "StateDirectory=runbook\n", "User=runbook\n",
                           "--grace 5m"})
    EXPECT_NE(daemon.find(line), std::string::npos) << line;
  std::string timer = slurp(k_deploy / "systemd" / "runbook-schedule.timer");
  EXPECT_NE(timer.find("OnCalendar=minutely\n"), std::string::npos);
  EXPECT_NE(timer.find("Persistent=true\n"), std::string::npos);
  EXPECT_NE(slurp(k_deploy / "systemd" / "runbook-schedule.service").find("schedule --once"), std::string::npos);
}

TEST(Deploy, TheKubernetesManifestsParseAndHoldTogether) {
  // python3-yaml (scripts/setup installs it): every document parses, and the references match
  std::string check = R"py(
import sys, yaml
d = sys.argv[1]
docs = {}
for f in ("config.yaml", "cronjob.yaml", "deployment.yaml"):
    for doc in yaml.safe_load_all(open(d + "/" + f)):
        docs.setdefault(doc["kind"], []).append(doc)
names = {(k, x["metadata"]["name"]) for k, xs in docs.items() for x in xs}
cj = docs["CronJob"][0]["spec"]
assert cj["concurrencyPolicy"] == "Forbid", "concurrencyPolicy"
assert 10 <= cj["startingDeadlineSeconds"] < 60, "startingDeadlineSeconds"
job_pod = cj["jobTemplate"]["spec"]["template"]["spec"]
dep_pod = docs["Deployment"][0]["spec"]["template"]["spec"]
assert "--once" in job_pod["containers"][0]["args"], "--once"
assert "--once" not in dep_pod["containers"][0]["args"], "the daemon has no --once"
args = dep_pod["containers"][0]["args"]
assert args[args.index("--grace") + 1] == "5m"
for pod in (job_pod, dep_pod):
    assert pod["terminationGracePeriodSeconds"] > 300, "longer than the 5m grace"
    for v in pod["volumes"]:
        if "configMap" in v:
            assert ("ConfigMap", v["configMap"]["name"]) in names, v
    for e in pod["containers"][0]["env"]:
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            sec = [s for s in docs["Secret"] if s["metadata"]["name"] == ref["name"]]
            assert sec and ref["key"] in sec[0]["stringData"], ref
print("ok")
)py";
  rb::testing::temp_dir dir{"rb-deploy"};
  dir.write("check.py", check);
  auto [rc, out] = sh("python3 '" + (dir.path() / "check.py").string() + "' '" + (k_deploy / "kubernetes").string() + "'");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "ok\n");
}

TEST(Deploy, ARunbookDirectoryMountedFromAConfigMapListsEachRunbookOnce) {
  // what the kubelet makes of a ConfigMap volume: a hidden timestamped directory with the
  // files, a ..data link to it, and a link per key to ..data/key
  rb::testing::temp_dir dir{"rb-deploy"};
  fs::path root = dir.path() / "runbooks";
  dir.write("runbooks/..2026_12_03_16_00_00.000000001/maintenance_nightly.lua", "-- a runbook\n");
  fs::create_directory_symlink("..2026_12_03_16_00_00.000000001", root / "..data");
  fs::create_symlink("..data/maintenance_nightly.lua", root / "maintenance_nightly.lua");
  auto found = rb::run::list_runbooks({root});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].name, "maintenance_nightly");
}

}  // namespace
