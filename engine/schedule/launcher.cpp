// Child runs for the scheduler: posix_spawn, waitpid(WNOHANG), signals to the child's group.
#include "engine/schedule/launcher.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/error.hpp"

extern char** environ;

namespace rb::schedule {

std::filesystem::path self_program() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path("runbook") : p;
}

process_launcher::process_launcher(std::filesystem::path program, std::vector<std::string> extra)
    : m_program(std::move(program)), m_extra(std::move(extra)) {}

std::vector<std::string> process_launcher::argv_for(const entry& e, const std::string& due_utc) const {
  std::vector<std::string> argv = {m_program.string(), "run", e.runbook};
  if (!e.target.empty()) argv.insert(argv.end(), {"--target", e.target});
  for (const auto& [k, v] : e.params.items())
    argv.insert(argv.end(), {"--param", k + "=" + (v.is_string() ? v.get<std::string>() : v.dump())});
  // Unattended: destructive steps of a scheduled runbook were confirmed when it was scheduled.
  argv.insert(argv.end(), {"--yes", "--reason", "scheduled (" + e.when.text() + ", due " + due_utc + ")"});
  argv.insert(argv.end(), m_extra.begin(), m_extra.end());
  return argv;
}

long long process_launcher::start(const entry& e, const std::string& due_utc) {
  std::vector<std::string> args = argv_for(e, due_utc);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, args[0].c_str(), nullptr, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    throw error(error_kind::io, "unable to start '" + args[0] + " run " + e.runbook + "': " + std::strerror(rc));
  m_children.insert(pid);
  return pid;
}

std::map<long long, int> process_launcher::reap() {
  std::map<long long, int> out;
  for (auto it = m_children.begin(); it != m_children.end();) {
    int status = 0;
    pid_t pid = ::waitpid(static_cast<pid_t>(*it), &status, WNOHANG);
    if (pid == 0 || (pid < 0 && errno == EINTR)) {
      ++it;
      continue;
    }
    out[*it] = pid < 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? -WTERMSIG(status) : -1;
    it = m_children.erase(it);
  }
  return out;
}

void process_launcher::terminate(long long pid) { ::kill(static_cast<pid_t>(pid), SIGTERM); }

void process_launcher::kill(long long pid) { ::kill(-static_cast<pid_t>(pid), SIGKILL); }

}  // namespace rb::schedule
