// Starting a child process, the first half of engine/shell/process: the program found in PATH,
// its environment and user resolved up front, pipes, and posix_spawn (or fork + exec to switch
// users). process.cpp waits for it, captures its output and kills its group.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/shell/process.hpp"

namespace rb::shell::detail {

std::string errno_text(int err);

/// Throws rb::error (kind shell) "unable to start 'argv0': why".
[[noreturn]] void fail_start(const std::string& argv0, const std::string& why);

/// An owned file descriptor.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : m_fd(fd) {}
  unique_fd(unique_fd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.m_fd, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const noexcept { return m_fd; }
  bool valid() const noexcept { return m_fd >= 0; }
  void reset(int fd = -1) noexcept {
    // close() is not retried on EINTR: on Linux the descriptor is gone either way.
    if (m_fd >= 0) ::close(m_fd);
    m_fd = fd;
  }

 private:
  int m_fd = -1;
};

/// Moves a close-on-exec descriptor above 0..2 so that dup2 onto the standard streams never
/// targets itself (which would leave FD_CLOEXEC set in the child).
unique_fd above_stdio(unique_fd fd, const std::string& argv0);

struct pipe_ends {
  unique_fd read, write;
};
/// A close-on-exec pipe whose ends are both above 0..2.
pipe_ends make_pipe(const std::string& argv0);

/// The descriptors a child's standard streams come from.
struct child_stdio {
  int in, out, err;
};

/// The user a child switches to, resolved in the parent (getpwnam and getgrouplist are not
/// async-signal-safe, so the child only calls setgroups/setgid/setuid).
struct target_user {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::string home;
};

/// What spawning a child needs, resolved before any descriptor is made, so that "not found", "no
/// such user" or "no such directory" are reported before anything starts.
struct spawn_plan {
  std::optional<target_user> user;  ///< set when the child switches users
  std::string program;              ///< argv[0] resolved against the child's PATH
  std::vector<std::string> argv;
  std::vector<std::string> env;  ///< "KEY=value"
};

/// Resolves the user, the environment, the program and the working directory of `opts`.
spawn_plan plan_spawn(const process_options& opts);

/// Starts the child in its own process group with `stdio` as its standard streams, default signal
/// dispositions, an empty signal mask and no other descriptors; returns its pid.
pid_t spawn(spawn_plan& plan, const process_options& opts, child_stdio stdio);

}  // namespace rb::shell::detail
