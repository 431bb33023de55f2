// Compensation: the rollback handlers of completed steps run in reverse order (after a failure,
// a cancel, or `runbook rollback RUN`).
#include <memory>

#include "engine/db/advisory_lock.hpp"
#include "engine/run/context.hpp"
#include "engine/run/executor.hpp"
#include "engine/run/executor_detail.hpp"
#include "engine/run/state.hpp"

namespace rb::run {

using detail::ms_between;
using detail::step_fields;

run_outcome executor::rollback(const runbook_def& book, const run_state& state, const run_options& opts,
                               const std::optional<std::string>& phase_filter) {
  if (phase_filter) {
    bool known = false;
    for (const auto& p : book.phases) known = known || p.name == *phase_filter;
    if (!known) throw error(error_kind::usage, "runbook '" + book.name + "' has no phase '" + *phase_filter + "'");
  }
  run_outcome outcome;
  outcome.run_id = state.run_id;
  run_context ctx(m_log, m_out, outcome.run_id, book, opts.params);
  ctx.set_notifier(m_notifier);
  ctx.use_services(m_clock, *m_stop);
  ctx.set_target(m_target);
  ctx.set_config(m_config);
  std::unique_ptr<db::connection> lock_conn;
  std::unique_ptr<db::run_lock> lock;
  if (book.lock && m_target && m_target->configured()) {
    lock_conn = m_target->open_another("run lock");
    lock = std::make_unique<db::run_lock>(*lock_conn, "runbook:" + book.name, outcome.run_id, book.name);
  }
  if (m_target) m_target->on_statement([&ctx](const db::statement_record& r) { ctx.record_statement(r); });
  struct unhook {
    target_session* t;
    ~unhook() {
      if (t) t->on_statement(nullptr);
    }
  } unhook_guard{m_target};
  auto t0 = m_clock.now();
  // Completed steps whose work stands: succeeded, and for a transactional phase committed.
  std::vector<step_ref> done;
  for (const auto& p : book.phases) {
    if (phase_filter && p.name != *phase_filter) continue;
    auto committed = state.phase_status.find(p.name);
    bool phase_committed = committed != state.phase_status.end() && committed->second == status::succeeded;
    for (const auto& s : p.steps) {
      auto it = state.step_end.find({p.name, s.name});
      bool ok = it != state.step_end.end() && it->second.value("status", "") == "succeeded";
      if (ok && (!p.transaction || phase_committed)) done.push_back({&p, &s});
    }
  }
  std::string why = "requested by " + operator_identity() + (opts.reason.empty() ? "" : ": " + opts.reason);
  ctx.audit("run.rollback", {{"reason", why}, {"steps", done.size()},
                             {"phase", phase_filter ? json(*phase_filter) : json(nullptr)}});
  m_out.run_started(book, outcome.run_id, true, false);
  m_out.rollback_started(phase_filter ? "phase '" + *phase_filter + "' only" : "every completed step");
  std::optional<step_error> rb_fail;
  int undone = 0;
  bool ok = compensate(ctx, book, done, &state, rb_fail, undone);
  outcome.error = rb_fail;
  outcome.rolled_back = ok;
  outcome.status = std::string(ok ? status::rolled_back : status::rollback_failed);
  outcome.duration = milliseconds(ms_between(t0, m_clock.now()));
  json f = {{"status", outcome.status}, {"duration_ms", outcome.duration.count()}, {"undone", undone},
            {"rolled_back", ok}};
  if (outcome.error) f["error"] = outcome.error->to_json();
  ctx.set_position(nullptr, nullptr);
  ctx.audit("run.end", std::move(f));
  if (undone == 0) m_out.message("nothing to roll back: no completed step with a rollback handler that was not undone already");
  m_out.run_finished(outcome.status, outcome.duration, outcome.run_id);
  return outcome;
}

bool executor::compensate(run_context& ctx, const runbook_def& book, const std::vector<step_ref>& done,
                          const run_state* resumed, std::optional<step_error>& failure, int& undone) {
  for (auto it = done.rbegin(); it != done.rend(); ++it) {
    const phase_def& phase = *it->phase;
    const step_def& step = *it->step;
    if (!step.has_rollback) continue;
    if (resumed && resumed->rolled_back.count({phase.name, step.name})) continue;
    ctx.set_position(&phase, &step);
    json base = step_fields(phase, step);
    ctx.audit("rollback.start", base);
    ++undone;
    auto t0 = m_clock.now();
    step_call call{book, phase, step, 1, std::nullopt, &ctx};
    if (m_target) m_target->start_step();
    arm(ctx, book, phase, step, call);
    call_result r = step.body->rollback(call);
    if (m_target) {
      if (auto why = m_target->close_stray_transaction()) {
        step_error err;
        err.kind = error_kind::step_failed;
        err.klass = "transaction_open";
        err.message = *why;  // compensate() says whose rollback failed
        if (r.error) r.error->message += "; " + *why;
        else r.error = std::move(err);
      }
    }
    ctx.set_limits(std::nullopt, milliseconds(0), milliseconds(0));
    json f = base;
    f["status"] = r.ok() ? "succeeded" : "failed";
    f["duration_ms"] = ms_between(t0, m_clock.now());
    if (r.error) f["error"] = r.error->to_json();
    ctx.audit("rollback.end", std::move(f), false);
    m_out.rollback_step(phase, step, r.ok() ? "succeeded" : "failed", r.error ? &*r.error : nullptr);
    if (r.error) {
      failure = r.error;
      failure->message = "the rollback of " + describe_step(book, phase, step) + " failed: " + failure->message;
      return false;
    }
  }
  return true;
}

}  // namespace rb::run
