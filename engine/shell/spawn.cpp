// Starting a child process: the program found in PATH, its environment and user resolved up
// front, pipes above the standard streams, and posix_spawn, or fork + exec to switch users.
#include "engine/shell/spawn.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "engine/error.hpp"

extern char** environ;

namespace rb::shell::detail {
namespace {

constexpr const char* k_default_path = "/usr/local/bin:/usr/bin:/bin";

std::optional<target_user> lookup_user(const process_options& opts) {
  if (!opts.run_as_user) return std::nullopt;
  const std::string& name = *opts.run_as_user;
  const std::string& argv0 = opts.argv.front();

  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  int rc;
  while ((rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found)) == ERANGE)
    buf.resize(buf.size() * 2);
  if (rc != 0) fail_start(argv0, "cannot look up user '" + name + "': " + errno_text(rc));
  if (found == nullptr) fail_start(argv0, "no such user '" + name + "'");

  if (::geteuid() != 0) {
    if (pw.pw_uid == ::geteuid()) return std::nullopt;  // already that user
    fail_start(argv0, "cannot run as user '" + name + "' without being root");
  }

  target_user user{name, pw.pw_uid, pw.pw_gid, {}, pw.pw_dir ? pw.pw_dir : "/"};
  int count = 32;
  for (;;) {
    user.groups.resize(static_cast<std::size_t>(count));
    int n = count;
    if (::getgrouplist(name.c_str(), pw.pw_gid, user.groups.data(), &n) >= 0) {
      user.groups.resize(static_cast<std::size_t>(n));
      break;
    }
    count = std::max(n, count * 2);
  }
  return user;
}

/// The child's environment as "KEY=value" strings.
std::map<std::string, std::string> child_env(const process_options& opts,
                                             const std::optional<target_user>& user) {
  std::map<std::string, std::string> env;
  if (!opts.clear_env) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view entry(*e);
      auto eq = entry.find('=');
      if (eq == std::string_view::npos || eq == 0) continue;
      env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
    if (user) {
      env["HOME"] = user->home;
      env["USER"] = user->name;
      env["LOGNAME"] = user->name;
    }
  }
  for (const auto& [key, value] : opts.env) env[key] = value;
  return env;
}

/// Resolves argv[0] against the child's PATH, as execvp would, so that "not found" is reported
/// before anything is spawned.
std::string resolve_program(const std::string& argv0, const std::map<std::string, std::string>& env) {
  if (argv0.empty()) fail_start(argv0, "the program name is empty");
  if (argv0.find('/') != std::string::npos) return argv0;

  auto it = env.find("PATH");
  std::string path = it != env.end() ? it->second : k_default_path;
  bool denied = false;
  std::size_t pos = 0;
  for (;;) {
    auto colon = path.find(':', pos);
    std::string dir = path.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + argv0;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      denied = true;
    }
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  if (denied) fail_start(argv0, "permission denied");
  fail_start(argv0, "not found in PATH (" + path + ")");
}

/// NULL-terminated pointer arrays over strings that outlive them.
std::vector<char*> c_array(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

pid_t spawn_plain(const std::string& argv0, const std::string& program, char* const* argv,
                  char* const* envp, const std::optional<std::filesystem::path>& cwd,
                  child_stdio stdio) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  if (int rc = ::posix_spawn_file_actions_init(&actions); rc != 0) fail_start(argv0, errno_text(rc));
  if (int rc = ::posix_spawnattr_init(&attr); rc != 0) {
    ::posix_spawn_file_actions_destroy(&actions);
    fail_start(argv0, errno_text(rc));
  }

  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  int rc = 0;
  auto step = [&rc](int r) {
    if (rc == 0) rc = r;
  };
  step(::posix_spawn_file_actions_adddup2(&actions, stdio.in, 0));
  step(::posix_spawn_file_actions_adddup2(&actions, stdio.out, 1));
  step(::posix_spawn_file_actions_adddup2(&actions, stdio.err, 2));
  step(::posix_spawn_file_actions_addclosefrom_np(&actions, 3));
  if (cwd) step(::posix_spawn_file_actions_addchdir_np(&actions, cwd->c_str()));
  step(::posix_spawnattr_setflags(
      &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
  step(::posix_spawnattr_setpgroup(&attr, 0));
  step(::posix_spawnattr_setsigmask(&attr, &none));
  step(::posix_spawnattr_setsigdefault(&attr, &all));

  pid_t pid = -1;
  if (rc == 0) rc = ::posix_spawn(&pid, program.c_str(), &actions, &attr, argv, envp);
  ::posix_spawnattr_destroy(&attr);
  ::posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) fail_start(argv0, errno_text(rc));
  return pid;
}

/// What a forked child reports through its error pipe when it cannot exec.
struct child_failure {
  int stage;
  int err;
};
enum child_stage : int { stage_setup = 1, stage_chdir, stage_user, stage_exec };

/// fork + exec for switching users, which posix_spawn cannot do. Only async-signal-safe calls
/// happen between fork and exec; everything is prepared before the fork.
pid_t spawn_as_user(const std::string& argv0, const std::string& program, char* const* argv,
                    char* const* envp, const std::optional<std::filesystem::path>& cwd,
                    child_stdio stdio, const target_user& user) {
  pipe_ends report = make_pipe(argv0);
  const char* dir = cwd ? cwd->c_str() : nullptr;
  const gid_t* groups = user.groups.data();
  const std::size_t group_count = user.groups.size();
  const int rtmin = SIGRTMIN;
  const int report_fd = report.write.get();
  long open_max = ::sysconf(_SC_OPEN_MAX);
  const int max_fd = open_max > 0 && open_max < 65536 ? static_cast<int>(open_max) : 65536;

  // Block every signal so that no handler of ours runs in the child before it resets them.
  sigset_t all, none, saved;
  sigfillset(&all);
  sigemptyset(&none);
  ::pthread_sigmask(SIG_SETMASK, &all, &saved);
  pid_t pid = ::fork();
  if (pid == 0) {
    auto die = [report_fd](int stage) {
      child_failure f{stage, errno};
      ssize_t ignored = ::write(report_fd, &f, sizeof f);
      (void)ignored;
      ::_exit(127);
    };
    if (::setpgid(0, 0) != 0) die(stage_setup);
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig == SIGKILL || sig == SIGSTOP || (sig > 31 && sig < rtmin)) continue;
      struct sigaction sa {};
      sa.sa_handler = SIG_DFL;
      ::sigaction(sig, &sa, nullptr);
    }
    if (::dup2(stdio.in, 0) < 0 || ::dup2(stdio.out, 1) < 0 || ::dup2(stdio.err, 2) < 0)
      die(stage_setup);
    if (::setgroups(group_count, groups) != 0 || ::setgid(user.gid) != 0 || ::setuid(user.uid) != 0)
      die(stage_user);
    if (dir != nullptr && ::chdir(dir) != 0) die(stage_chdir);  // as the user, like su -c 'cd'
    // Everything above 2 closes at exec; the report pipe stays usable until then.
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < max_fd; ++fd) {
        int flags = ::fcntl(fd, F_GETFD);
        if (flags >= 0 && (flags & FD_CLOEXEC) == 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
      }
    }
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(program.c_str(), argv, envp);
    die(stage_exec);
  }
  int fork_err = errno;
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (pid < 0) fail_start(argv0, "cannot fork: " + errno_text(fork_err));
  // Also from this side, so that kill(-pid) works whichever runs first.
  ::setpgid(pid, pid);
  report.write.reset();

  child_failure failure{};
  std::size_t got = 0;
  while (got < sizeof failure) {
    ssize_t n = ::read(report.read.get(), reinterpret_cast<char*>(&failure) + got, sizeof failure - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got == 0) return pid;  // exec succeeded: the pipe closed on exec

  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  switch (failure.stage) {
    case stage_chdir:
      fail_start(argv0, "cannot change to directory '" + std::string(dir ? dir : "") + "': " + errno_text(failure.err));
    case stage_user:
      fail_start(argv0, "cannot switch to user '" + user.name + "': " + errno_text(failure.err));
    case stage_exec:
      fail_start(argv0, errno_text(failure.err));
    default:
      fail_start(argv0, "cannot set up the child: " + errno_text(failure.err));
  }
}

}  // namespace

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

[[noreturn]] void fail_start(const std::string& argv0, const std::string& why) {
  throw error(error_kind::shell, "unable to start '" + argv0 + "': " + why);
}

unique_fd above_stdio(unique_fd fd, const std::string& argv0) {
  if (fd.get() > 2) return fd;
  int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) fail_start(argv0, "cannot duplicate a descriptor: " + errno_text(errno));
  return unique_fd(moved);
}

pipe_ends make_pipe(const std::string& argv0) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail_start(argv0, "cannot create a pipe: " + errno_text(errno));
  unique_fd r(fds[0]), w(fds[1]);
  r = above_stdio(std::move(r), argv0);
  w = above_stdio(std::move(w), argv0);
  return {std::move(r), std::move(w)};
}

spawn_plan plan_spawn(const process_options& opts) {
  const std::string& argv0 = opts.argv.front();
  spawn_plan plan;
  plan.user = lookup_user(opts);
  auto env_map = child_env(opts, plan.user);
  plan.program = resolve_program(argv0, env_map);
  if (opts.cwd) {
    std::error_code ec;
    if (!std::filesystem::is_directory(*opts.cwd, ec))
      fail_start(argv0, "working directory '" + opts.cwd->string() + "' does not exist");
  }
  plan.argv = opts.argv;
  plan.env.reserve(env_map.size());
  for (const auto& [key, value] : env_map) plan.env.push_back(key + "=" + value);
  return plan;
}

pid_t spawn(spawn_plan& plan, const process_options& opts, child_stdio stdio) {
  const std::string& argv0 = opts.argv.front();
  std::vector<char*> argv = c_array(plan.argv);
  std::vector<char*> envp = c_array(plan.env);
  return plan.user ? spawn_as_user(argv0, plan.program, argv.data(), envp.data(), opts.cwd, stdio, *plan.user)
                   : spawn_plain(argv0, plan.program, argv.data(), envp.data(), opts.cwd, stdio);
}

}  // namespace rb::shell::detail
