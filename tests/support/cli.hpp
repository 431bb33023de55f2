// Running the real runbook binary from tests, in a working directory with its own state dir.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/shell/process.hpp"

namespace rb::testing {

/// In a forked child: enters `dir`, sets `env`, and executes `runbook args...`; never returns
/// (exit 127 when it cannot). The caller arranges the child's file descriptors first.
[[noreturn]] void exec_runbook(const std::filesystem::path& dir, const std::map<std::string, std::string>& env,
                               const std::vector<std::string>& args);

/// A working directory with runbooks/ and a private state dir, and a way to run the CLI in it.
class cli_sandbox {
 public:
  explicit cli_sandbox(const std::filesystem::path& dir);
  /// Runs `runbook args...` in the directory; stdin is /dev/null unless given.
  rb::shell::process_result run(const std::vector<std::string>& args, std::map<std::string, std::string> env = {},
                                std::optional<std::string> stdin_data = std::nullopt) const;
  /// Starts `runbook args...` without waiting (stdout to /dev/null); returns its pid.
  pid_t spawn(const std::vector<std::string>& args, std::map<std::string, std::string> env = {}) const;
  /// Waits up to `limit` for a record with this event (and step) to appear in the audit log.
  bool wait_for(const std::string& event, const std::string& step = "",
                std::chrono::milliseconds limit = std::chrono::seconds(20)) const;
  std::filesystem::path audit_log() const { return m_dir / "state" / "audit.jsonl"; }
  /// Every record of the audit log, parsed.
  std::vector<nlohmann::json> records() const;
  /// Records with this event (and, if given, this step).
  std::vector<nlohmann::json> events(const std::string& event, const std::string& step = "") const;
  const std::filesystem::path& dir() const { return m_dir; }
  std::map<std::string, std::string> env() const;

 private:
  std::filesystem::path m_dir;
};

/// Waits for a child process and returns its exit code: -1 when a signal ended it, -2 when it
/// was still running at `limit` (then it is killed). `took` receives how long it ran.
int wait_exit(pid_t pid, std::chrono::seconds limit, std::chrono::milliseconds* took = nullptr);

}  // namespace rb::testing
