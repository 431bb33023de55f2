// Escalation policies: levels of channels to notify, each after so long unacknowledged.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rb::incident {

using json = nlohmann::json;
using std::chrono::milliseconds;

/// The most passes through a policy (PagerDuty's num_loops cap).
inline constexpr int k_max_repeat = 9;

/// One level: who is told, and when (time since the incident opened).
struct level {
  milliseconds after{0};
  std::vector<std::string> notify;  ///< channel names
};

/// `escalation = { database = { levels = {...}, repeat = 2, repeat_after = "1h" } }`.
/// Levels climb while the incident is open and unacknowledged; `after` counts from the
/// incident's opening and never decreases from one level to the next. With `repeat = N` the
/// whole chain runs N more times, pass k starting k * repeat_after after the opening; levels
/// keep counting (a 3-level policy's second pass is levels 4 to 6).
struct policy {
  std::string name;
  std::vector<level> levels;
  int repeat = 0;
  milliseconds repeat_after{0};

  /// Every level of every pass.
  int total_levels() const { return static_cast<int>(levels.size()) * (repeat + 1); }
  /// Level n (1-based, counting passes).
  const level& at(int n) const { return levels[static_cast<std::size_t>(n - 1) % levels.size()]; }
  /// How long after the opening level n falls due.
  milliseconds due_after(int n) const {
    int pass = (n - 1) / static_cast<int>(levels.size());
    return repeat_after * pass + at(n).after;
  }

  /// The snapshot written onto an incident when it opens (later config edits do not change it).
  json to_json() const;
  /// Reads a snapshot back. Throws rb::error(audit) when it is malformed.
  static policy from_json(const json& j);
  /// Reads a policy from the config's table (`{ levels = {...} }` as JSON); `where` names the
  /// config file for messages. Throws rb::error(bad_runbook) naming the policy and field.
  static policy from_config(const std::string& name, const json& spec, const std::string& where);
};

/// The config's policies and `default_escalation`.
struct policy_set {
  std::map<std::string, policy> policies;
  std::optional<std::string> default_policy;

  /// The policy for a runbook: its own `escalation`, else the default; null when neither.
  const policy* for_runbook(const std::optional<std::string>& runbook_escalation) const;
  /// The named policy, or null.
  const policy* find(const std::string& name) const;
  /// Throws rb::error(bad_runbook) "<where>: escalation policy 'x' is not defined in <config>"
  /// (with a suggestion) when `name` is not a policy.
  void require(const std::string& name, const std::string& where, const std::string& config_file) const;
};

}  // namespace rb::incident
