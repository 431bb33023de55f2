// A notification: what one alert or incident state change tells one channel.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace rb::alert {

using json = nlohmann::json;

/// Severities are PagerDuty's, most severe first.
namespace severity {
inline constexpr const char* critical = "critical";
inline constexpr const char* error = "error";
inline constexpr const char* warning = "warning";
inline constexpr const char* info = "info";
}  // namespace severity

/// One message to deliver. Channels render it in their own format (Slack blocks, PagerDuty
/// Events v2, an email, a JSON line); none of its strings may hold a secret.
struct notification {
  std::string severity = severity::error;
  std::string summary;                ///< one line
  json details = json::object();      ///< shown as fields / custom_details
  /// "trigger", "acknowledge" or "resolve" (PagerDuty's event_action; other channels say it in words).
  std::string action = "trigger";
  std::string dedup;                  ///< dedup key: the same key names the same alert/incident
  std::string runbook, target, run_id;
  std::string incident;               ///< incident id (INC-7F3A2C), empty for a plain alert
  int level = 0;                      ///< escalation level (1-based), 0 for a plain alert
  std::string timestamp;              ///< RFC 3339 UTC, when it happened; the dispatcher sets it when empty
};

/// Where notifications go. The alert dispatcher implements it; incidents and the bindings
/// only know this interface.
class notifier {
 public:
  virtual ~notifier() = default;
  /// Queues `n` for the named channel and returns its delivery id at once. Never throws for
  /// a delivery problem (those are audited as alert.failed); throws rb::error(usage) for a
  /// channel that is not configured.
  virtual std::string send(const std::string& channel, const notification& n) = 0;
};

}  // namespace rb::alert
