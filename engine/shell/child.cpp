// Child processes that outlive a call: posix_spawn into a new group, waitpid(WNOHANG).
#include "engine/shell/child.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>

#include "engine/error.hpp"

extern char** environ;

namespace rb::shell {

long long spawn_child(const std::vector<std::string>& args, const std::optional<std::string>& stdout_file,
                      const std::optional<std::string>& stderr_file) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  if (stdout_file) posix_spawn_file_actions_addopen(&files, 1, stdout_file->c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (stderr_file) posix_spawn_file_actions_addopen(&files, 2, stderr_file->c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
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
  int rc = ::posix_spawn(&pid, copy.at(0).c_str(), &files, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&files);
  if (rc != 0) throw error(error_kind::io, "unable to start '" + copy[0] + "': " + std::strerror(rc));
  return pid;
}

std::filesystem::path self_program() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path("runbook") : p;
}

std::optional<int> poll_child(long long pid) {
  int status = 0;
  pid_t r;
  do r = ::waitpid(static_cast<pid_t>(pid), &status, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == 0) return std::nullopt;
  if (r < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? -WTERMSIG(status) : -1;
}

}  // namespace rb::shell
