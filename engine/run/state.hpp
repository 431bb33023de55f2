// Where runbook keeps its state (the audit log), who the operator is, and run ids.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace rb::run {

/// --state-dir, else $RUNBOOK_STATE_DIR, else $XDG_STATE_HOME/runbook, else
/// ~/.local/state/runbook.
std::filesystem::path state_dir(const std::optional<std::string>& flag);
/// <state-dir>/audit.jsonl
std::filesystem::path audit_path(const std::filesystem::path& state_dir);
/// "alice@db-admin-1" (with " via sudo from bob" when run under sudo).
std::string operator_identity();
std::string host_name();
/// A new run id: "20261122T022648Z-3f9a1c", sortable by start time.
std::string new_run_id();

}  // namespace rb::run
