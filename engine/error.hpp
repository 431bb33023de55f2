// The one error type of runbook: a kind, a message, and the exit code that kind maps to.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace rb {

/// Every kind of failure the engine distinguishes, declared once with a stable name and exit
/// code (see kind_info in error.cpp). Exit codes: 0 ok, 1 run failed, 2 usage or bad input,
/// 3 rollback failed, 4 succeeded with failures (steps with on_error = "continue" failed),
/// 75 locked by another run, 130 cancelled.
enum class error_kind {
  usage,            ///< the caller used the tool wrongly (bad flag, unknown runbook)
  bad_runbook,      ///< a runbook or config file is malformed
  bad_param,        ///< a --param value is missing or of the wrong type
  step_failed,      ///< a step's run or verify raised an error
  check_failed,     ///< check(cond, msg) was false
  timeout,          ///< a step exceeded its time limit
  memory,           ///< a step exceeded the Lua memory limit
  sandbox,          ///< a runbook tried something the sandbox denies
  sql,              ///< PostgreSQL reported an error (has a SQLSTATE)
  connection,       ///< the database connection failed or was lost
  in_doubt,         ///< a COMMIT's outcome is unknown; never retried
  shell,            ///< a shell command failed
  not_confirmed,    ///< a destructive step was not confirmed
  rollback_failed,  ///< a rollback handler failed
  locked,           ///< another run holds the lock
  cancelled,        ///< the operator interrupted the run
  audit,            ///< the audit log could not be written or is corrupt
  io,               ///< a file could not be read or written
  internal,         ///< a bug in runbook itself
};

/// Stable lower-case name of a kind ("step_failed"), as used in Lua error tables and the audit.
std::string_view kind_name(error_kind kind);
/// Parses a kind name; nullopt when unknown.
std::optional<error_kind> kind_from_name(std::string_view name);
/// The process exit code a failure of this kind ends the CLI with.
int exit_code(error_kind kind);

namespace exit_codes {
inline constexpr int ok = 0;
inline constexpr int failed = 1;
inline constexpr int usage = 2;
inline constexpr int rollback_failed = 3;
inline constexpr int succeeded_with_failures = 4;  ///< a run status, not an error kind
inline constexpr int locked = 75;
inline constexpr int cancelled = 130;
}  // namespace exit_codes

/// The engine's exception. `what()` is the full, readable message.
class error : public std::runtime_error {
 public:
  error(error_kind kind, const std::string& message) : std::runtime_error(message), m_kind(kind) {}
  error_kind kind() const noexcept { return m_kind; }
  int exit_code() const noexcept { return rb::exit_code(m_kind); }

 private:
  error_kind m_kind;
};

}  // namespace rb
