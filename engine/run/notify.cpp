// alert and escalate from a run: fields checked, channels named, incidents opened or raised.
#include "engine/run/notify.hpp"

#include <algorithm>

#include "engine/alert/channel.hpp"
#include "engine/incident/escalator.hpp"
#include "engine/run/config.hpp"
#include "engine/run/context.hpp"
#include "engine/util/text.hpp"

namespace rb::run {
namespace {

void only_fields(const json& spec, const std::vector<std::string>& known, const std::string& who) {
  if (!spec.is_object()) throw error(error_kind::usage, who + " takes named fields: " + who + "{ summary = \"...\" }");
  for (const auto& [k, v] : spec.items())
    if (std::find(known.begin(), known.end(), k) == known.end())
      throw error(error_kind::usage,
                  who + ": unknown field '" + k + "'" + did_you_mean(k, known) + "; known fields: " + join(known, ", "));
}

std::vector<std::string> channels_of(const json& spec, const std::string& who) {
  std::vector<std::string> out;
  if (!spec.contains("channel")) return out;
  const json& c = spec["channel"];
  if (c.is_string()) return {c.get<std::string>()};
  if (c.is_array()) {
    for (const auto& one : c) {
      if (!one.is_string()) break;
      out.push_back(one.get<std::string>());
    }
    if (out.size() == c.size()) return out;
  }
  throw error(error_kind::usage, who + ": channel must be a name or a list of names");
}

}  // namespace

void check_alert_spec(const json& spec, const std::string& who) {
  only_fields(spec, {"severity", "summary", "details", "channel", "dedup", "action"}, who);
  for (const char* k : {"severity", "summary", "dedup"})
    if (spec.contains(k) && !spec[k].is_string()) throw error(error_kind::usage, who + ": " + k + " must be a string");
  std::string sev = spec.value("severity", std::string(alert::severity::error));
  if (alert::severity_rank(sev) < 0)
    throw error(error_kind::usage, who + ": severity '" + sev + "' is not one of critical, error, warning, info" +
                                       did_you_mean(sev, {"critical", "error", "warning", "info"}));
  if (spec.value("summary", "").empty()) throw error(error_kind::usage, who + " needs a summary = \"...\"");
  channels_of(spec, who);
}

std::vector<std::string> send_alert(run_context& ctx, const json& spec, const std::string& who) {
  check_alert_spec(spec, who);
  alert::notification n;
  n.severity = spec.value("severity", std::string(alert::severity::error));
  n.summary = spec.value("summary", "");
  n.dedup = spec.value("dedup", "");
  if (spec.contains("details")) n.details = spec["details"];
  if (n.details.is_array() && n.details.empty()) n.details = json::object();
  std::vector<std::string> channels = channels_of(spec, who);
  const config* cfg = ctx.cfg();
  if (channels.empty() && (!cfg || cfg->channels.empty())) {
    // No channel anywhere (a --sandbox try without a config): shown and audited as a log line.
    ctx.log("alert [" + n.severity + "] " + n.summary + " (not sent: no alert channels are configured)");
    return {};
  }
  if (channels.empty()) {
    if (cfg) channels = cfg->default_channels;
    if (channels.empty()) throw error(error_kind::usage, who + ": no channel given and the config has no default_channels");
  }
  // Every name is checked before anything is sent: a typo never half-sends an alert.
  std::vector<std::string> known;
  if (cfg)
    for (const auto& [name, c] : cfg->channels) known.push_back(name);
  for (const auto& c : channels)
    if (std::find(known.begin(), known.end(), c) == known.end())
      throw error(error_kind::usage, who + ": no alert channel '" + c + "'" + did_you_mean(c, known) +
                                         (known.empty() ? "; the config has no channels" : "; channels: " + join(known, ", ")));
  alert::notifier* out = ctx.notifier();
  if (!out) {
    // A run nothing delivers for (a rehearsal on a copy, an embedding without channels): the
    // alert is shown and audited as a log line, and the run goes on.
    ctx.log("alert [" + n.severity + "] " + n.summary + " (not sent: this run delivers no alerts)");
    return {};
  }
  n.runbook = ctx.book().name;
  n.run_id = ctx.run_id();
  if (ctx.target() && ctx.target()->configured()) n.target = ctx.target()->target().name;
  std::vector<std::string> ids;
  for (const auto& c : channels) ids.push_back(out->send(c, n));
  return ids;
}

void check_escalate_spec(const json& spec) {
  only_fields(spec, {"level", "policy", "summary", "severity", "cause", "action"}, "escalate");
  if (spec.contains("level") && (!spec["level"].is_number_integer() || spec["level"].get<long long>() < 1 ||
                                 spec["level"].get<long long>() > 1000))
    throw error(error_kind::usage, "escalate: level must be a whole number from 1");
  if (spec.contains("severity") &&
      (!spec["severity"].is_string() || !incident::valid_severity(spec["severity"].get<std::string>())))
    throw error(error_kind::usage, "escalate: severity must be one of critical, error, warning, info");
  for (const char* k : {"policy", "summary", "cause"})
    if (spec.contains(k) && !spec[k].is_string()) throw error(error_kind::usage, std::string("escalate: ") + k + " must be a string");
}

std::string escalate(run_context& ctx, const json& spec) {
  check_escalate_spec(spec);
  const config* cfg = ctx.cfg();
  static const incident::policy_set none;
  const incident::policy_set& policies = cfg ? cfg->escalation : none;
  std::optional<std::string> name =
      spec.contains("policy") ? std::optional(spec["policy"].get<std::string>()) : ctx.book().escalation;
  const incident::policy* p = policies.for_runbook(name);
  if (!p) {
    if (name) policies.require(*name, "escalate", cfg ? cfg->file.string() : "");
    throw error(error_kind::usage,
                "escalate: no escalation policy: pass policy = \"name\", or set the runbook's escalation or the "
                "config's default_escalation");
  }
  incident::open_request r;
  r.runbook = ctx.book().name;
  r.target = ctx.target() && ctx.target()->configured() ? ctx.target()->target().name : "";
  r.cause = spec.value("cause", "escalate");
  r.severity = spec.value("severity", "error");
  r.level = spec.value("level", 1);
  std::string where = ctx.step() ? ", step '" + ctx.step()->name + "'" : ctx.phase() ? ", phase '" + ctx.phase()->name + "'" : "";
  r.summary = spec.value("summary", "escalated by runbook " + r.runbook + where);
  r.source_run = ctx.run_id();
  r.escalation = p;
  if (ctx.step()) r.details = {{"step", ctx.step()->name}};
  else if (ctx.phase()) r.details = {{"phase", ctx.phase()->name}};
  ctx.flush_statements();  // the journal keeps the order things happened in
  incident::store incidents(ctx.audit_log());
  incident::escalator esc(incidents, ctx.notifier(), ctx.clock());
  incident::escalator::result res = esc.open_or_join(r);
  ctx.out().message(incident::describe(res));
  return res.what.inc.id;
}

}  // namespace rb::run
