// Fleet runs: one runbook over many targets, each target its own `runbook run` process.
//
// Each member run has its own run id, run lock, audit records and rollback, exactly as if it
// had been started by hand; the fleet only decides how many run at once, when to stop
// starting new ones, and how to stop them all (SIGTERM: each rolls back as Ctrl-C would).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rb::run {

struct fleet_options {
  int parallel = 1;               ///< member runs at once
  int stop_after_failures = 0;    ///< start no new member after this many failed (0: never stop)
  std::filesystem::path log_dir;  ///< each member's stdout/stderr: <target>.out / <target>.log
};

struct fleet_member {
  std::string target;
  std::string status = "not_started";  ///< the run's status, "not_started", or "exit N"
  std::string run_id;
  int exit_code = -1;
  std::chrono::milliseconds duration{0};
  std::filesystem::path log;           ///< its stderr (progress and errors)
};

struct fleet_result {
  std::vector<fleet_member> members;  ///< in target order
  bool cancelled = false;
  /// 0 when every member succeeded, 3 when any rollback failed, 1 when none succeeded,
  /// 4 when some did and some did not (or were not started), 130 when cancelled.
  int exit_code() const;
  nlohmann::json to_json() const;
};

/// Targets among `known` matching `spec`: a comma list of names and globs ("shard-*",
/// "eu-?", "a,b,c"), in config order, each once. Throws rb::error(usage) naming a name or
/// glob that matches nothing.
std::vector<std::string> select_targets(const std::string& spec, const std::vector<std::string>& known);

/// True when `spec` names more than one target or holds a glob character.
bool is_fleet_spec(const std::string& spec);

/// Runs the members. `argv_for(target)` gives a member's command line (it must print the run
/// outcome as JSON on stdout: `runbook run ... --json`). `stopping()` is polled; when it
/// turns true every running member is sent SIGTERM, no new one starts, and the fleet waits
/// for them. `progress(member)` is called when a member starts and when it ends.
fleet_result run_fleet(const std::vector<std::string>& targets,
                       const std::function<std::vector<std::string>(const std::string&)>& argv_for,
                       const fleet_options& opts, const std::function<bool()>& stopping,
                       const std::function<void(const fleet_member&, bool ended)>& progress);

}  // namespace rb::run
