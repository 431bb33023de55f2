// Cancellation by the operator: async-signal-safe flags set by SIGINT/SIGTERM.
#include "engine/run/cancel.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>

namespace rb::run::cancel {
namespace {

std::atomic<int> g_signals{0};       // signals received
std::atomic<int> g_signo{0};
std::atomic<bool> g_acknowledged{false};

void on_signal(int signo) {
  int n = g_signals.fetch_add(1) + 1;
  g_signo.store(signo);
  if (n >= 2) {
    static const char msg[] = "\nrunbook: interrupted again; stopping now (resume with 'runbook resume RUN')\n";
    ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(130);
  }
}

}  // namespace

void install_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

bool requested() { return g_signals.load() > 0 && !g_acknowledged.load(); }
void acknowledge() { g_acknowledged.store(true); }
int signal_number() { return g_signo.load(); }
void request(int signo) { on_signal(signo); }
void reset() {
  g_signals.store(0);
  g_signo.store(0);
  g_acknowledged.store(false);
}

}  // namespace rb::run::cancel
