// Guards: each asked in order, audited, under a deadline; the first no (or error) decides.
#include "engine/run/guard.hpp"

#include "engine/run/executor_detail.hpp"

namespace rb::run {

guard_verdict check_guards(run_context& ctx, const runbook_def& book, const phase_def* phase) {
  const std::vector<guard_def>& guards = phase ? phase->guards : book.guards;
  guard_verdict v;
  v.of = guards.size();
  if (guards.empty()) return v;
  // A runbook's guards run outside any phase: the code sees ctx.phase = "" (no phase).
  phase_def outside;
  outside.where = book.where;
  const phase_def& scope = phase ? *phase : outside;
  milliseconds limit = phase && phase->timeout ? *phase->timeout : book.timeout;
  milliseconds st{0}, lt{30'000};
  if (ctx.target() && ctx.target()->configured()) {
    st = ctx.target()->target().statement_timeout;
    lt = ctx.target()->target().lock_timeout;
  }
  for (std::size_t i = 0; i < guards.size(); ++i) {
    const guard_def& g = guards[i];
    step_def as_step;  // what the guard's ctx and its statements' records name it by
    as_step.name = "guard " + std::to_string(i + 1);
    as_step.where = g.where;
    auto t0 = ctx.clock().now();
    step_call call{book, scope, as_step, 1, std::nullopt, &ctx};
    if (limit.count() > 0) call.deadline = t0 + limit;
    ctx.set_limits(call.deadline, st, lt);
    ctx.set_position(phase, &as_step);
    call_result r = g.body->check(call);
    ctx.flush_statements();  // before as_step goes: its statements are recorded as the guard's
    ctx.set_position(phase, nullptr);
    ctx.set_limits(std::nullopt, st, lt);

    json f = {{"scope", phase ? "phase" : "runbook"},
              {"index", i + 1},
              {"of", guards.size()},
              {"duration_ms", detail::ms_between(t0, ctx.clock().now())}};
    if (phase) f["phase"] = phase->name;
    bool ok = false;
    std::string reason;
    if (r.error) {
      f["ok"] = nullptr;
      f["error"] = r.error->to_json();
    } else {
      ok = r.value.value("ok", false);
      if (r.value.contains("reason") && r.value["reason"].is_string()) reason = r.value["reason"].get<std::string>();
      if (!ok && reason.empty()) reason = "guard " + std::to_string(i + 1) + " said no (it gave no reason)";
      f["ok"] = ok;
      if (!reason.empty()) f["reason"] = reason;
    }
    ctx.audit("guard", std::move(f));
    std::string who = (phase ? "phase '" + phase->name + "'" : "runbook '" + book.name + "'") + ": guard " +
                      std::to_string(i + 1) + " of " + std::to_string(guards.size());
    if (r.error) {
      ctx.out().message(who + " failed: " + r.error->describe());
      v.ok = false;
      v.index = i + 1;
      v.error = std::move(r.error);
      return v;
    }
    if (!ok) {
      ctx.out().message(who + " said no: " + reason);
      v.ok = false;
      v.index = i + 1;
      v.reason = reason;
      return v;
    }
  }
  return v;
}

}  // namespace rb::run
