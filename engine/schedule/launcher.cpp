// Child runs for the scheduler: `runbook run` argv, spawned and reaped through engine/shell/child.
#include "engine/schedule/launcher.hpp"

#include <signal.h>

#include "engine/shell/child.hpp"

namespace rb::schedule {

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
  long long pid = shell::spawn_child(argv_for(e, due_utc));
  m_children.insert(pid);
  return pid;
}

std::map<long long, int> process_launcher::reap() {
  std::map<long long, int> out;
  for (auto it = m_children.begin(); it != m_children.end();) {
    if (auto code = shell::poll_child(*it)) {
      out[*it] = *code;
      it = m_children.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void process_launcher::terminate(long long pid) { ::kill(static_cast<pid_t>(pid), SIGTERM); }

void process_launcher::kill(long long pid) { ::kill(-static_cast<pid_t>(pid), SIGKILL); }

}  // namespace rb::schedule
