// An incident: one problem with one runbook on one target, its state, level and policy.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/incident/policy.hpp"

namespace rb::incident {

using json = nlohmann::json;
using wall_time = std::chrono::system_clock::time_point;

/// States, as written in the journal and shown by `runbook incidents`.
namespace state {
inline constexpr std::string_view open = "open";
inline constexpr std::string_view acknowledged = "acknowledged";
inline constexpr std::string_view resolved = "resolved";
}  // namespace state

/// Journal events.
namespace event {
inline constexpr std::string_view open = "incident.open";
inline constexpr std::string_view escalate = "incident.escalate";
inline constexpr std::string_view ack = "incident.ack";
inline constexpr std::string_view resolve = "incident.resolve";
}  // namespace event

/// One incident as the journal's records make it.
struct incident {
  std::string id;        ///< "INC-7F3A2C"
  std::string dedup;     ///< make_dedup_key(runbook, target, cause): the same key, the same incident
  std::string runbook, target, cause;
  std::string severity;  ///< critical, error, warning, info
  std::string summary;
  std::string source_run;  ///< the run that opened it, if one did
  std::string state{state::open};
  int level = 1;
  wall_time opened_at{}, changed_at{};
  policy escalation;     ///< the policy as it was when the incident opened
  std::string acked_by, resolved_by, note;
  json last_notification;  ///< {action, level, channels, at} of the last state change, or null
  std::vector<std::string> told;  ///< every channel a trigger went to, each once (ack and resolve tell them)

  bool is_open() const { return state != state::resolved; }
  /// When its next level falls due: open, unacknowledged, and a level left. Else nullopt.
  std::optional<wall_time> next_due() const;
  /// What `runbook incidents --json` prints (age measured at `now`).
  json to_json(wall_time now) const;
};

/// The dedup key of (runbook, target, cause): "rb-" and 32 hex digits of a SHA-256 over the
/// three, so two different runbooks or targets never share one (and it fits PagerDuty's 255).
std::string make_dedup_key(std::string_view runbook, std::string_view target, std::string_view cause);
/// A new incident id: "INC-" and six upper-case hex digits.
std::string new_incident_id();
/// critical 4, error 3, warning 2, info 1, anything else 0.
int severity_rank(std::string_view severity);
/// True for the four severities.
bool valid_severity(std::string_view severity);

}  // namespace rb::incident
