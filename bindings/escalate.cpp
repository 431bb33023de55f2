// Lua module: escalate{ level, policy, summary, severity, cause } — during a run, opens (or
// joins and raises) an incident at once and returns its id; while a runbook file is being
// loaded (a watch's `action = escalate{...}`), returns an action descriptor table instead.
#include "bindings/escalate.hpp"

#include "bindings/convert.hpp"
#include "bindings/error.hpp"
#include "bindings/sandbox.hpp"
#include "engine/incident/escalator.hpp"
#include "engine/run/config.hpp"
#include "engine/run/context.hpp"
#include "engine/util/text.hpp"

namespace rb::lua {
namespace {

/// The fields escalate{} takes, checked; raises on anything else.
json read_spec(lua_State* L) {
  if (!lua_isnoneornil(L, 1) && lua_type(L, 1) != LUA_TTABLE)
    raise_usage(L, error_kind::usage, "escalate takes a table: escalate{ level = 2, summary = \"...\" }");
  json spec = lua_isnoneornil(L, 1) ? json::object() : to_json(L, 1);
  if (spec.is_array() && spec.empty()) spec = json::object();
  if (!spec.is_object()) raise_usage(L, error_kind::usage, "escalate takes named fields: escalate{ level = 2, summary = \"...\" }");
  const std::vector<std::string> known = {"level", "policy", "summary", "severity", "cause"};
  for (const auto& [k, v] : spec.items()) {
    bool ok = false;
    for (const auto& n : known) ok = ok || n == k;
    if (!ok)
      raise_usage(L, error_kind::usage,
                  "escalate: unknown field '" + k + "'" + did_you_mean(k, known) + "; known fields: " + join(known, ", "));
  }
  if (spec.contains("level") && (!spec["level"].is_number_integer() || spec["level"].get<long long>() < 1 ||
                                 spec["level"].get<long long>() > 1000))
    raise_usage(L, error_kind::usage, "escalate: level must be a whole number from 1");
  if (spec.contains("severity") &&
      (!spec["severity"].is_string() || !incident::valid_severity(spec["severity"].get<std::string>())))
    raise_usage(L, error_kind::usage, "escalate: severity must be one of critical, error, warning, info");
  for (const char* k : {"policy", "summary", "cause"})
    if (spec.contains(k) && !spec[k].is_string()) raise_usage(L, error_kind::usage, std::string("escalate: ") + k + " must be a string");
  return spec;
}

int l_escalate(lua_State* L) {
  json spec = read_spec(L);
  sandbox& sb = sandbox::from(L);
  run::run_context* ctx = sb.current_run();
  if (!ctx) {
    // Declaring, not running (trigger { action = escalate{...} }): a descriptor for the watch.
    spec["action"] = "escalate";
    push_json(L, spec);
    return 1;
  }
  const run::config* cfg = ctx->cfg();
  static const incident::policy_set none;
  const incident::policy_set& policies = cfg ? cfg->escalation : none;
  std::optional<std::string> name = spec.contains("policy") ? std::optional(spec["policy"].get<std::string>())
                                                            : ctx->book().escalation;
  const incident::policy* p = policies.for_runbook(name);
  if (!p) {
    if (name) policies.require(*name, "escalate", cfg ? cfg->file.string() : "");
    raise_usage(L, error_kind::usage,
                "escalate: no escalation policy: pass policy = \"name\", or set the runbook's escalation or the "
                "config's default_escalation");
  }
  incident::open_request r;
  r.runbook = ctx->book().name;
  r.target = ctx->target() && ctx->target()->configured() ? ctx->target()->target().name : "";
  r.cause = spec.value("cause", "escalate");
  r.severity = spec.value("severity", "error");
  r.level = spec.value("level", 1);
  r.summary = spec.value("summary", "escalated by runbook " + r.runbook + (ctx->step() ? ", step '" + ctx->step()->name + "'" : ""));
  r.source_run = ctx->run_id();
  r.escalation = p;
  if (ctx->step()) r.details = {{"step", ctx->step()->name}};
  ctx->flush_statements();  // the journal keeps the order things happened in
  static system_clock wall;
  incident::store incidents(ctx->audit_log());
  incident::escalator esc(incidents, ctx->notifier(), wall);
  incident::escalator::result res = esc.open_or_join(r);
  ctx->out().message(incident::describe(res));
  lua_pushstring(L, res.what.inc.id.c_str());
  return 1;
}

}  // namespace

void open_escalate(sandbox& sb) {
  lua_pushcfunction(sb.state(), trampoline<l_escalate>);
  sb.set_global("escalate");
}

}  // namespace rb::lua
