// Alerts and escalations a run raises itself: alert.send{...} and escalate{...} from runbook
// code, and a watch's alert{...} and escalate{...} actions. One place checks their fields and
// carries them out, whichever of those asked.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rb::run {

class run_context;
using json = nlohmann::json;

/// Checks alert fields (severity, summary, details, channel: a name or a list, dedup) without
/// sending anything. Throws rb::error(usage) "<who>: ..." naming the field.
void check_alert_spec(const json& spec, const std::string& who);

/// Sends an alert on the run's channels (`channel`, else the config's default_channels): every
/// channel name is checked before anything is sent. Returns the delivery ids. A run that
/// delivers no alerts (no channels configured, a rehearsal) shows and audits the alert as a
/// log line instead and returns no ids. Throws rb::error(usage) for bad fields or channels.
std::vector<std::string> send_alert(run_context& ctx, const json& spec, const std::string& who);

/// Checks escalate fields (level, policy, summary, severity, cause). Throws rb::error(usage).
void check_escalate_spec(const json& spec);

/// Opens an incident for the run's runbook and target, or joins the open one and raises it to
/// `level`, under `policy` (else the runbook's escalation, else the config's
/// default_escalation); tells the level's channels. Returns the incident id. Throws
/// rb::error(usage) when no policy applies.
std::string escalate(run_context& ctx, const json& spec);

}  // namespace rb::run
