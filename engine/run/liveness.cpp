// Liveness of a run: kill(pid, 0) and /proc/PID/cmdline, in one place.
#include "engine/run/liveness.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>

#include "engine/run/state.hpp"

namespace rb::run {

owner_state process_owner_state(const std::string& host, long long pid) {
  if (pid <= 0 || host.empty() || host != host_name()) return owner_state::unknown;
  if (pid == static_cast<long long>(::getpid())) return owner_state::gone;
  auto p = static_cast<pid_t>(pid);
  if (::kill(p, 0) != 0 && errno != EPERM) return owner_state::gone;
  // The pid may have been reused since: only a runbook process owns a run.
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
  if (!cmd) return owner_state::alive;  // exists, but /proc hides it (hidepid): assume it is the run
  std::string text((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
  return text.find("runbook") != std::string::npos ? owner_state::alive : owner_state::gone;
}

long long owner_pid(const run_state& state) {
  long long pid = state.start.value("pid", 0LL);
  for (const auto& rec : state.records)
    if (rec.value("event", "") == "run.resume") pid = rec.value("pid", pid);
  return pid;
}

owner_state run_owner_state(const run_state& state) {
  return process_owner_state(state.start.value("host", ""), owner_pid(state));
}

}  // namespace rb::run
