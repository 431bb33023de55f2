// The audit log read back as a journal: a run's state for resume, history, and a run's records.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace rb::run {

using json = nlohmann::json;
using step_key = std::pair<std::string, std::string>;  ///< (phase, step)

/// Everything the journal knows about one run.
struct run_state {
  std::string run_id;
  json start;                                  ///< the run.start record
  std::optional<json> end;                     ///< the run.end record, if it ended
  std::map<step_key, json> step_end;           ///< last step.end per step
  std::set<step_key> step_started;
  std::map<std::string, std::string> phase_status;  ///< phase -> status of its phase.end
  /// phase -> its phase.commit record (with the transaction's `xid`) when no phase.end followed:
  /// the process died during COMMIT, and only the server knows whether it went through.
  std::map<std::string, json> commit_pending;
  /// Steps interrupted mid-way: a step.start with no step.end after it, or ended by a cancel.
  /// Outside a transaction their work may be done in full, in part or not at all.
  std::set<step_key> step_interrupted;
  /// Steps whose last end is a failure that on_error = "continue" let pass, in order.
  std::vector<step_key> continued;
  bool rolling_back = false;                   ///< a run.rollback record was written
  std::set<step_key> rolled_back;              ///< rollback.end succeeded
  std::vector<json> records;                   ///< all records of the run, in order

  /// True when the step finished for good: succeeded, skipped, or failed with on_error=continue.
  bool step_done(const std::string& phase, const std::string& step) const;
  std::string runbook() const { return start.value("runbook", ""); }
};

/// The state of the run whose id is `id` or starts with it. Throws rb::error(usage) when no
/// run or more than one run matches.
run_state load_run(const std::filesystem::path& log, const std::string& id);

/// A record's string field, or "" when it is missing, null or not a string.
std::string text_field(const json& record, const char* key);

/// One line of `runbook history`.
struct run_summary {
  std::string run_id, runbook, status, started, ended, op, reason, host;
  long long pid = 0;
  int resumes = 0;
  std::vector<std::string> continued;  ///< steps that failed with on_error = "continue" (run.end)
  std::string skip_reason;             ///< status skipped: what the guard that said no said
};

/// Runs in the log, oldest first, optionally only those of one runbook.
std::vector<run_summary> history(const std::filesystem::path& log, const std::optional<std::string>& runbook);

}  // namespace rb::run
