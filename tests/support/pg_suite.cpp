// rb_test_pg: the ctest fixture that starts one PostgreSQL for a whole test run and removes it.
//
//   rb_test_pg start RECORD   starts a watcher process that owns a throwaway cluster (in
//                             $TMPDIR/runbook-pg-*, like a sandbox) and writes where it is to
//                             RECORD; returns once the server accepts connections.
//   rb_test_pg stop RECORD    asks the watcher to stop and remove the cluster, and waits.
//
// The watcher also removes the cluster when the process that ran `start` (ctest) is gone, so a
// ctest killed before its cleanup leaves nothing running; and if the watcher itself is killed,
// the cluster's owner file names a dead process, so the next cluster made anywhere sweeps it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <spdlog/spdlog.h>
#include <string>

#include "engine/db/cluster.hpp"
#include "engine/db/sweeper.hpp"
#include "tests/support/pg_fixture.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// A descriptor that becomes readable when process `pid` exits (-1 when it is already gone).
int pid_fd(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

/// Whether `pid` is a watcher started by this program (not a process that reused its pid).
bool is_watcher(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), {});
  return cmdline.find("rb_test_pg") != std::string::npos;
}

/// Asks the watcher named in `record` to remove its cluster and waits until it has exited, then
/// makes sure its directory is gone. Returns false, having said why, when something is left.
bool stop(const fs::path& record) {
  std::error_code ec;
  if (!fs::exists(record, ec)) return true;
  rb::testing::suite_cluster_record r;
  try {
    r = rb::testing::read_suite_cluster_record(record);
  } catch (const std::exception& e) {
    std::cerr << "rb_test_pg: " << e.what() << "\n";
    fs::remove(record, ec);
    return false;
  }
  if (r.watcher_pid > 0 && is_watcher(r.watcher_pid)) {
    int fd = pid_fd(r.watcher_pid);
    ::kill(r.watcher_pid, SIGTERM);
    if (fd >= 0) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 60'000) != 1) std::cerr << "rb_test_pg: the watcher " << r.watcher_pid << " did not exit\n";
      ::close(fd);
    }
  }
  // A watcher that died without cleaning up: its cluster is stale, and the sweeper removes it.
  if (fs::exists(r.base_dir, ec)) rb::db::sweep_stale_sandboxes(r.base_dir.parent_path());
  fs::remove(record, ec);
  if (fs::exists(r.base_dir, ec)) {
    std::cerr << "rb_test_pg: unable to remove the test cluster in '" << r.base_dir.string() << "'\n";
    return false;
  }
  return true;
}

/// The watcher: creates the cluster, reports on `ready`, then waits for SIGTERM or for `owner`
/// to exit, and removes the cluster (the cluster's destructor) before it exits.
int watch(const fs::path& record, pid_t owner, int ready) {
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  ::sigprocmask(SIG_BLOCK, &signals, nullptr);
  int sig_fd = ::signalfd(-1, &signals, SFD_CLOEXEC);
  int owner_fd = pid_fd(owner);
  bool owner_gone = owner_fd < 0 && errno == ESRCH;  // the run ended already
  std::optional<rb::db::cluster> cluster;
  try {
    // Room for the tests running side by side and for their runbook processes.
    cluster.emplace(rb::db::cluster_options{.settings = {{"max_connections", "200"}}});
    fs::path tmp = record;
    tmp += ".tmp";
    std::ofstream(tmp) << "base_dir=" << cluster->base_dir().string() << "\nwatcher=" << ::getpid() << "\n";
    fs::rename(tmp, record);
  } catch (const std::exception& e) {
    std::string said = e.what();
    (void)!::write(ready, said.data(), said.size());
    return 1;
  }
  (void)!::write(ready, "ok", 2);
  ::close(ready);
  pollfd fds[2] = {{sig_fd, POLLIN, 0}, {owner_fd, POLLIN, 0}};
  while (!owner_gone) {
    int n = ::poll(fds, owner_fd >= 0 ? 2 : 1, owner_fd >= 0 ? -1 : 1000);
    if (n > 0) break;
    if (n < 0 && errno != EINTR) break;
    owner_gone = owner_fd < 0 && ::kill(owner, 0) != 0 && errno == ESRCH;  // no pidfd: poll the owner
  }
  try {
    if (rb::testing::read_suite_cluster_record(record).watcher_pid == ::getpid()) fs::remove(record);
  } catch (const std::exception&) {
    // no record, or not ours: nothing to remove
  }
  return 0;  // ~cluster: pg_ctl stop -m immediate, then the directory goes
}

int start(const fs::path& record) {
  stop(record);  // a run killed before its cleanup
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    std::cerr << "rb_test_pg: pipe: " << std::strerror(errno) << "\n";
    return 1;
  }
  pid_t owner = ::getppid();
  fs::path log = record;
  log += ".log";
  pid_t pid = ::fork();
  if (pid < 0) {
    std::cerr << "rb_test_pg: fork: " << std::strerror(errno) << "\n";
    return 1;
  }
  if (pid == 0) {
    // Away from ctest's terminal signals and its output pipes (ctest waits for them to close).
    ::close(pipe_fds[0]);
    ::setsid();
    int null_fd = ::open("/dev/null", O_RDONLY);
    int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(null_fd, 0);
    ::dup2(log_fd >= 0 ? log_fd : null_fd, 1);
    ::dup2(log_fd >= 0 ? log_fd : null_fd, 2);
    int code = 1;
    try {
      code = watch(record, owner, pipe_fds[1]);
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
    }
    std::exit(code);
  }
  ::close(pipe_fds[1]);
  std::string said;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    said.append(buf, static_cast<std::size_t>(n));
  }
  if (said != "ok") {
    std::cerr << "rb_test_pg: unable to start the test suite's PostgreSQL: "
              << (said.empty() ? "the watcher died (see " + log.string() + ")" : said) << "\n";
    return 1;
  }
  std::cout << "test suite PostgreSQL: " << rb::testing::read_suite_cluster_record(record).base_dir.string() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string verb = argc == 3 ? argv[1] : "";
  if (verb != "start" && verb != "stop") {
    std::cerr << "usage: rb_test_pg start|stop RECORD_FILE\n";
    return 2;
  }
  try {
    fs::path record = fs::absolute(argv[2]);
    return verb == "start" ? start(record) : (stop(record) ? 0 : 1);
  } catch (const std::exception& e) {
    std::cerr << "rb_test_pg: " << e.what() << "\n";
    return 1;
  }
}
