// Runs a child process without a shell: spawn (engine/shell/spawn), feed stdin, drain
// stdout/stderr, time out, kill its group.
#include "engine/shell/process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <utility>

#include "engine/error.hpp"
#include "engine/shell/spawn.hpp"

namespace rb::shell {
namespace {

using namespace detail;
using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto k_tick = 50ms;         // cancel polling, and exit polling without a pidfd
constexpr auto k_kill_grace = 2s;     // SIGTERM -> SIGKILL
constexpr auto k_drain_grace = 100ms; // reading after the child is gone but its pipes are not
constexpr std::size_t k_chunk = 64 * 1024;

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/// Owns the spawned child until it is reaped; if run() unwinds early (a callback threw), the
/// process group is killed and the child reaped.
class child_process {
 public:
  explicit child_process(pid_t pid) : m_pid(pid) {}
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() {
    if (m_reaped) return;
    ::kill(-m_pid, SIGKILL);
    ::kill(m_pid, SIGKILL);
    wait(0);
  }

  pid_t pid() const noexcept { return m_pid; }
  bool reaped() const noexcept { return m_reaped; }
  int status() const noexcept { return m_status; }

  /// waitpid with `flags`; true once the child has been reaped.
  bool wait(int flags) {
    if (m_reaped) return true;
    for (;;) {
      pid_t r = ::waitpid(m_pid, &m_status, flags);
      if (r == m_pid) return m_reaped = true;
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {  // ECHILD: someone else reaped it (SIGCHLD ignored); treat as gone
        m_status = 0;
        return m_reaped = true;
      }
      return false;
    }
  }

  /// Signals the whole process group.
  void signal_group(int sig) const noexcept { ::kill(-m_pid, sig); }

  /// True while any member of the child's process group is alive. Zombies do not count: an
  /// orphaned grandchild whose new parent never reaps it must not hold us up.
  bool group_alive() const {
    if (::kill(-m_pid, 0) != 0 && errno == ESRCH) return false;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return true;
    bool alive = false;
    while (dirent* entry = ::readdir(proc)) {
      if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
      std::ifstream stat_file(std::string("/proc/") + entry->d_name + "/stat");
      std::string line;
      if (!std::getline(stat_file, line)) continue;
      // pid (comm) state ppid pgrp ...; comm may contain anything, so parse after the last ')'.
      auto paren = line.rfind(')');
      if (paren == std::string::npos) continue;
      char state = 0;
      long ppid = 0, pgrp = 0;
      if (std::sscanf(line.c_str() + paren + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3) continue;
      if (pgrp == m_pid && state != 'Z' && state != 'X') {
        alive = true;
        break;
      }
    }
    ::closedir(proc);
    return alive;
  }

 private:
  pid_t m_pid;
  bool m_reaped = false;
  int m_status = 0;
};

/// Blocks SIGPIPE for this thread while writing to the child's stdin, and swallows the one a
/// write to a closed pipe raises (libpq's technique), so a child that stops reading cannot kill
/// the caller.
class sigpipe_guard {
 public:
  sigpipe_guard() {
    sigemptyset(&m_set);
    sigaddset(&m_set, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &m_set, &m_saved);
    sigset_t pending;
    sigemptyset(&pending);
    ::sigpending(&pending);
    m_was_pending = sigismember(&pending, SIGPIPE) == 1;
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;
  ~sigpipe_guard() {
    if (m_got_epipe && !m_was_pending) {
      timespec zero{0, 0};
      while (::sigtimedwait(&m_set, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &m_saved, nullptr);
  }
  void got_epipe() noexcept { m_got_epipe = true; }

 private:
  sigset_t m_set, m_saved;
  bool m_was_pending = false;
  bool m_got_epipe = false;
};

/// One captured output stream: keeps the last `limit` bytes, counts them all.
class output_tail {
 public:
  output_tail(unique_fd fd, std::size_t limit, bool is_stderr)
      : m_fd(std::move(fd)), m_limit(limit), m_is_stderr(is_stderr) {}

  bool open() const noexcept { return m_fd.valid(); }
  int fd() const noexcept { return m_fd.get(); }
  std::size_t total() const noexcept { return m_total; }

  /// Reads what is available; closes at end-of-file or on error.
  void read_some(const process_options& opts, char* buf) {
    for (;;) {
      ssize_t n = ::read(m_fd.get(), buf, k_chunk);
      if (n > 0) {
        std::string_view chunk(buf, static_cast<std::size_t>(n));
        if (opts.on_output) opts.on_output(chunk, m_is_stderr);
        add(chunk);
        return;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      m_fd.reset();  // EOF, or an error we cannot recover from
      return;
    }
  }

  std::string take() {
    trim();
    return std::move(m_buf);
  }

 private:
  void add(std::string_view chunk) {
    m_total += chunk.size();
    if (m_limit == 0) return;
    if (chunk.size() >= m_limit) {
      m_buf.assign(chunk.substr(chunk.size() - m_limit));
      return;
    }
    m_buf.append(chunk);
    if (m_buf.size() > 2 * m_limit) trim();  // amortised: trim only when twice the limit
  }
  void trim() {
    if (m_buf.size() > m_limit) m_buf.erase(0, m_buf.size() - m_limit);
  }

  unique_fd m_fd;
  std::size_t m_limit;
  bool m_is_stderr;
  std::string m_buf;
  std::size_t m_total = 0;
};

int poll_timeout_ms(clock::time_point now, clock::time_point wake) {
  if (wake == clock::time_point::max()) return -1;
  if (wake <= now) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(wake - now).count();
  return static_cast<int>(std::min<long long>(ms, 60'000));
}

}  // namespace

process_result run(const process_options& opts) {
  if (opts.argv.empty()) throw error(error_kind::shell, "unable to start a process: no program given");
  const std::string& argv0 = opts.argv.front();

  spawn_plan plan = plan_spawn(opts);

  // The child's ends close in the parent as soon as it has been spawned.
  unique_fd child_in, parent_in;
  if (opts.stdin_data) {
    auto p = make_pipe(argv0);
    child_in = std::move(p.read);
    parent_in = std::move(p.write);
  } else {
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) fail_start(argv0, "cannot open /dev/null: " + errno_text(errno));
    child_in = above_stdio(unique_fd(null_fd), argv0);
  }
  auto out_pipe = make_pipe(argv0);
  auto err_pipe = make_pipe(argv0);
  child_stdio stdio{child_in.get(), out_pipe.write.get(), err_pipe.write.get()};

  const auto started = clock::now();
  pid_t pid = spawn(plan, opts, stdio);
  child_process child(pid);
  child_in.reset();
  out_pipe.write.reset();
  err_pipe.write.reset();

  output_tail out(std::move(out_pipe.read), opts.output_limit, false);
  output_tail err(std::move(err_pipe.read), opts.output_limit, true);
  set_nonblocking(out.fd());
  set_nonblocking(err.fd());
  std::string_view to_write;
  if (opts.stdin_data) {
    to_write = *opts.stdin_data;
    set_nonblocking(parent_in.get());
    if (to_write.empty()) parent_in.reset();
  }
  // Readable once the child exits; -1 on kernels before 5.3, where exits are polled for instead.
  // (The syscall directly: glibc 2.36's <sys/pidfd.h> lacks extern "C".)
  unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  process_result result;
  std::vector<char> buf(k_chunk);
  std::optional<clock::time_point> deadline;
  if (opts.timeout.count() > 0) deadline = started + opts.timeout;
  auto next_cancel_check = started + k_tick;
  auto next_tick = started + opts.tick_every;
  std::optional<clock::time_point> term_at;   // SIGTERM sent to the group
  bool killed = false;                        // SIGKILL sent to the group
  std::optional<clock::time_point> drain_at;  // from here on, only draining the pipes

  for (;;) {
    if (!child.reaped() && child.wait(WNOHANG)) pidfd.reset();
    auto now = clock::now();

    if (!term_at && !child.reaped()) {
      bool expired = deadline && now >= *deadline;
      if (!expired && opts.cancelled && (opts.cancel_fd >= 0 || now >= next_cancel_check)) {
        next_cancel_check = now + k_tick;
        result.cancelled = opts.cancelled();
      }
      if (expired) result.timed_out = true;
      if (result.timed_out || result.cancelled) {
        child.signal_group(SIGTERM);
        term_at = now;
      } else if (opts.on_tick && now >= next_tick) {
        next_tick = now + opts.tick_every;
        opts.on_tick(static_cast<int>(pid), std::chrono::duration_cast<std::chrono::milliseconds>(now - started));
      }
    }
    if (term_at && !killed && now >= *term_at + k_kill_grace &&
        (!child.reaped() || child.group_alive())) {
      child.signal_group(SIGKILL);
      killed = true;
    }
    if (child.reaped() && !drain_at && (!term_at || killed || !child.group_alive())) drain_at = now;
    if (drain_at && ((!out.open() && !err.open()) || now >= *drain_at + k_drain_grace)) break;

    auto wake = clock::time_point::max();
    auto wake_at = [&wake](clock::time_point t) { wake = std::min(wake, t); };
    if (!child.reaped()) {
      if (!pidfd.valid()) wake_at(now + k_tick);
      if (!term_at) {
        if (deadline) wake_at(*deadline);
        if (opts.cancelled && opts.cancel_fd < 0) wake_at(next_cancel_check);
        if (opts.on_tick) wake_at(next_tick);
      } else if (!killed) {
        wake_at(*term_at + k_kill_grace);
      }
    } else if (!drain_at) {  // terminating: wait for the rest of the group
      wake_at(now + k_tick);
      if (!killed) wake_at(*term_at + k_kill_grace);
    } else {
      wake_at(*drain_at + k_drain_grace);
    }

    std::array<pollfd, 5> fds{};
    nfds_t n = 0;
    int out_i = -1, err_i = -1, in_i = -1, pid_i = -1;
    // Readable when a cancel may have come: the top of the loop asks `cancelled` then.
    if (opts.cancelled && opts.cancel_fd >= 0 && !term_at && !child.reaped()) fds[n++] = {opts.cancel_fd, POLLIN, 0};
    if (out.open()) fds[out_i = static_cast<int>(n++)] = {out.fd(), POLLIN, 0};
    if (err.open()) fds[err_i = static_cast<int>(n++)] = {err.fd(), POLLIN, 0};
    if (parent_in.valid()) fds[in_i = static_cast<int>(n++)] = {parent_in.get(), POLLOUT, 0};
    if (pidfd.valid()) fds[pid_i = static_cast<int>(n++)] = {pidfd.get(), POLLIN, 0};

    int ready = ::poll(fds.data(), n, poll_timeout_ms(now, wake));
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw error(error_kind::shell, "unable to run '" + argv0 + "': poll failed: " + errno_text(errno));
    }
    if (ready == 0) continue;

    if (out_i >= 0 && fds[out_i].revents != 0) out.read_some(opts, buf.data());
    if (err_i >= 0 && fds[err_i].revents != 0) err.read_some(opts, buf.data());
    if (in_i >= 0 && fds[in_i].revents != 0) {
      if ((fds[in_i].revents & POLLOUT) != 0) {
        sigpipe_guard guard;
        ssize_t written;
        do {
          written = ::write(parent_in.get(), to_write.data(), std::min(to_write.size(), k_chunk));
        } while (written < 0 && errno == EINTR);
        if (written > 0) {
          to_write.remove_prefix(static_cast<std::size_t>(written));
          if (to_write.empty()) parent_in.reset();
        } else if (written < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
          if (errno == EPIPE) guard.got_epipe();
          parent_in.reset();  // the child stopped reading: not our failure
        }
      } else {
        parent_in.reset();  // POLLERR / POLLHUP: the read end is gone
      }
    }
    // A readable pidfd only means "exited": the waitpid at the top of the loop reaps it.
  }

  if (!child.reaped()) child.wait(0);  // unreachable in practice: drain_at needs a reaped child
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started);
  int status = child.status();
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  result.out_total = out.total();
  result.err_total = err.total();
  result.out = out.take();
  result.err = err.take();
  return result;
}

}  // namespace rb::shell
