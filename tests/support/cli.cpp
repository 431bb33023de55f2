// Running the real runbook binary from tests.
#include "tests/support/cli.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "engine/audit/log.hpp"

namespace rb::testing {

cli_sandbox::cli_sandbox(const std::filesystem::path& dir) : m_dir(dir) {}

std::map<std::string, std::string> cli_sandbox::env() const {
  return {{"RUNBOOK_STATE_DIR", (m_dir / "state").string()},
          {"RUNBOOK_PATH", ""},
          {"RUNBOOK_STDLIB", std::string(RUNBOOK_SOURCE_DIR) + "/stdlib"},
          {"NO_COLOR", "1"}};
}

rb::shell::process_result cli_sandbox::run(const std::vector<std::string>& args,
                                           std::map<std::string, std::string> env,
                                           std::optional<std::string> stdin_data) const {
  rb::shell::process_options o;
  o.argv.push_back(RUNBOOK_BINARY);
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.cwd = m_dir;
  o.env = this->env();
  for (auto& [k, v] : env) o.env[k] = v;
  o.stdin_data = std::move(stdin_data);
  o.timeout = std::chrono::seconds(120);
  return rb::shell::run(o);
}

pid_t cli_sandbox::spawn(const std::vector<std::string>& args, std::map<std::string, std::string> extra) const {
  auto env = this->env();
  for (auto& [k, v] : extra) env[k] = v;
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    exec_runbook(m_dir, env, args);
  }
  return pid;
}

void exec_runbook(const std::filesystem::path& dir, const std::map<std::string, std::string>& env,
                  const std::vector<std::string>& args) {
  if (::chdir(dir.c_str()) != 0) ::_exit(127);
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
  std::vector<std::string> all{RUNBOOK_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(RUNBOOK_BINARY, argv.data());
  ::_exit(127);
}

bool cli_sandbox::wait_for(const std::string& event, const std::string& step, std::chrono::milliseconds limit) const {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (!events(event, step).empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::vector<nlohmann::json> cli_sandbox::records() const {
  std::vector<nlohmann::json> out;
  rb::audit::for_each_record(audit_log(), [&](const nlohmann::json& r) { out.push_back(r); });
  return out;
}

std::vector<nlohmann::json> cli_sandbox::events(const std::string& event, const std::string& step) const {
  std::vector<nlohmann::json> out;
  for (auto& r : records())
    if (r.value("event", "") == event && (step.empty() || r.value("step", "") == step)) out.push_back(r);
  return out;
}

int wait_exit(pid_t pid, std::chrono::seconds limit, std::chrono::milliseconds* took) {
  auto t0 = std::chrono::steady_clock::now();
  int st = 0;
  while (::waitpid(pid, &st, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() - t0 > limit) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      return -2;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (took) *took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace rb::testing
