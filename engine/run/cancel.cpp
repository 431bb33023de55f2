// Cancellation by the operator: an async-signal-safe handler, a self-pipe, and a thread that
// forwards the signal to the registered runs' stop tokens.
#include "engine/run/cancel.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <thread>
#include <vector>

namespace rb::run::cancel {
namespace {

std::atomic<int> g_signals{0};  // signals received
std::atomic<int> g_signo{0};    // the first one
int g_pipe[2] = {-1, -1};       // the handler writes the signal number; the forwarder reads it

std::mutex g_mutex;             // guards g_runs
std::vector<stop_source*> g_runs;

void on_signal(int signo) {
  int n = g_signals.fetch_add(1) + 1;
  if (n >= 2) {
    static const char msg[] = "\nrunbook: interrupted again; stopping now (resume with 'runbook resume RUN')\n";
    ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(130);
  }
  g_signo.store(signo);
  unsigned char b = static_cast<unsigned char>(signo);
  int saved = errno;
  ssize_t ignored = ::write(g_pipe[1], &b, 1);
  (void)ignored;
  errno = saved;
}

void forward_signals() {
  for (;;) {
    unsigned char b = 0;
    ssize_t n = ::read(g_pipe[0], &b, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    std::lock_guard<std::mutex> lock(g_mutex);
    for (stop_source* s : g_runs) s->request(b);
  }
}

}  // namespace

void install_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (::pipe2(g_pipe, O_CLOEXEC) != 0) return;  // no forwarding: signals then end the process
    std::thread(forward_signals).detach();  // lives as long as the process
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
  });
}

forward::forward(stop_source& stop) : m_stop(stop) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_runs.push_back(&stop);
  if (int signo = g_signo.load(); signo != 0) stop.request(signo);
}

forward::~forward() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_runs.erase(std::remove(g_runs.begin(), g_runs.end(), &m_stop), g_runs.end());
}

}  // namespace rb::run::cancel
