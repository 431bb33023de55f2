// Child runs for the scheduler: `runbook run` in a process of its own, reaped without blocking.
#pragma once

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "engine/schedule/daemon.hpp"

namespace rb::schedule {

/// Starts each due run as `<program> run NAME [--target T] [--param k=v]... --yes --reason ...`
/// plus `extra` arguments (--config, --audit ...), with the daemon's stdout and stderr. The
/// child is its own process group leader so a terminal's Ctrl-C reaches only the daemon,
/// which decides how its children stop.
class process_launcher final : public launcher {
 public:
  process_launcher(std::filesystem::path program, std::vector<std::string> extra);
  long long start(const entry& e, const std::string& due_utc) override;
  std::map<long long, int> reap() override;
  void terminate(long long pid) override;
  void kill(long long pid) override;

  /// The argv start() would use (for tests and --list).
  std::vector<std::string> argv_for(const entry& e, const std::string& due_utc) const;

 private:
  std::filesystem::path m_program;
  std::vector<std::string> m_extra;
  std::set<long long> m_children;  ///< reap waits for these only, never for other children
};

}  // namespace rb::schedule
