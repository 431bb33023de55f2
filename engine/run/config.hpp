// Configuration: database targets and their defaults (read from runbook.lua by the bindings).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/incident/policy.hpp"
#include "engine/alert/channel.hpp"

namespace rb::run {

/// One database a runbook can run against.
struct target_config {
  std::string name;
  std::string dsn;                                       ///< without the password
  std::optional<std::string> password;                   ///< from secret "NAME", never from the file itself
  std::optional<std::chrono::milliseconds> statement_timeout, lock_timeout;
  /// Session settings every step starts with (`settings = { search_path = "app, public" }`).
  std::vector<std::pair<std::string, std::string>> settings;
};

struct config {
  std::filesystem::path file;                            ///< empty when there is no config file
  std::map<std::string, target_config> targets;
  std::optional<std::string> default_target;
  std::chrono::milliseconds statement_timeout{0};        ///< 0: the step's time limit governs
  std::chrono::milliseconds lock_timeout{30'000};        ///< no step waits forever behind a lock
  incident::policy_set escalation;                       ///< `escalation` and `default_escalation`
  /// Alert channels by name (`channels = { team = { type = "slack", ... } }`).
  std::map<std::string, alert::channel_config> channels;
  /// Where alert.send goes without `channel`.
  std::vector<std::string> default_channels;
  /// How long a run's end waits for pending alert deliveries (`alert_wait`).
  std::chrono::milliseconds alert_wait{10'000};
  /// Where the Prometheus textfile (runbook.prom) is rewritten after each run (`metrics_dir`,
  /// relative to the config file's directory); --metrics-dir overrides it.
  std::optional<std::filesystem::path> metrics_dir;
  /// The target whose database holds the schedule registry (`registry = "primary"`): schedulers
  /// on any host claim due runs there. Unset: one scheduler per state directory.
  std::optional<std::string> registry;
};

/// The target a run uses, with its effective timeouts.
struct resolved_target {
  std::string name;  ///< config name, "dsn" for --dsn/RUNBOOK_DSN, "sandbox" for --sandbox
  std::string dsn;   ///< with the password, ready for libpq
  std::chrono::milliseconds statement_timeout{0};
  std::chrono::milliseconds lock_timeout{30'000};
  std::vector<std::pair<std::string, std::string>> settings;  ///< the target's `settings`
};

/// Picks the target: --dsn, else RUNBOOK_DSN, else --target, else the runbook's `target`,
/// else the config's default_target, else its only target. nullopt when there is none at all
/// (fine for runbooks that never touch a database). Throws rb::error(usage) for an unknown
/// target name, with a suggestion.
std::optional<resolved_target> resolve_target(const config& cfg, const std::optional<std::string>& flag_target,
                                              const std::optional<std::string>& flag_dsn,
                                              const std::optional<std::string>& runbook_target);

/// `dsn` with `password` added (keyword form or URI form).
std::string dsn_with_password(const std::string& dsn, const std::string& password);

}  // namespace rb::run
