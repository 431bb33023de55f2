// The step runner: one step's condition, confirmation, attempts with backoff, savepoint, verify,
// and the limits (deadline on the run's clock, database timeouts) its code runs under.
#include <memory>

#include "engine/db/savepoint.hpp"
#include "engine/db/transaction.hpp"
#include "engine/db/xact.hpp"
#include "engine/run/context.hpp"
#include "engine/run/executor.hpp"
#include "engine/run/executor_detail.hpp"
#include "engine/run/retry.hpp"
#include "engine/run/state.hpp"

namespace rb::run {
namespace {

using detail::ms_between;
using detail::step_fields;

/// ROLLBACK TO the savepoint; false when that failed (the session or transaction is gone).
bool rollback_savepoint(db::savepoint& sp) {
  try {
    sp.rollback();
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

/// A step of a transaction = true phase failed on transaction control: its SQL tried to end the
/// phase's transaction (2D000: its own COMMIT, or a procedure that commits) or needs to run
/// outside any (25001: CREATE INDEX CONCURRENTLY, VACUUM ...). Say which step, and what to do.
void explain_transaction_error(step_error& err, const runbook_def& book, const phase_def& phase,
                               const step_def& step) {
  if (err.sqlstate != "2D000" && err.sqlstate != "25001") return;
  err.message = describe_step(book, phase, step) + " runs inside the transaction of phase '" + phase.name +
                "' (transaction = true): " + err.message;
  if (err.sqlstate == "25001")
    err.hint = "This statement cannot run inside a transaction block. Move the step to a phase without "
               "transaction = true (each statement then commits on its own; give the step a rollback handler).";
  else if (err.hint.empty())
    err.hint = "Leave BEGIN/COMMIT/ROLLBACK out of SQL run in a transaction = true phase, or move the step to a "
               "phase without transaction = true.";
}

}  // namespace

std::optional<std::chrono::steady_clock::time_point> executor::deadline_for(const runbook_def& book,
                                                                            const phase_def& phase,
                                                                            const step_def& step) const {
  milliseconds limit = step.timeout ? *step.timeout : phase.timeout ? *phase.timeout : book.timeout;
  if (limit.count() <= 0) return std::nullopt;
  return m_clock.now() + limit;
}

void executor::arm(run_context& ctx, const runbook_def& book, const phase_def& phase, const step_def& step,
                   step_call& call) const {
  call.deadline = deadline_for(book, phase, step);
  milliseconds st{0}, lt{30'000};
  if (m_target && m_target->configured()) {
    st = m_target->target().statement_timeout;
    lt = m_target->target().lock_timeout;
  }
  if (step.statement_timeout) st = *step.statement_timeout;
  if (step.lock_timeout) lt = *step.lock_timeout;
  ctx.set_limits(call.deadline, st, lt);
}

executor::step_result executor::execute_step(run_context& ctx, const runbook_def& book, const phase_def& phase,
                                             const step_def& step, on_error policy, const run_options& opts,
                                             std::size_t index, std::size_t total) {
  json base = step_fields(phase, step);
  auto t0 = m_clock.now();
  {
    json f = base;
    f["attempt"] = 1;
    f["index"] = index;
    f["of"] = total;
    ctx.audit("step.start", std::move(f));
  }
  m_out.step_started(step, index, total);
  step_call call{book, phase, step, 1, std::nullopt, &ctx};

  auto end_record = [&](std::string_view st, int attempt, const step_error* err, json extra) {
    json f = base;
    f["status"] = std::string(st);
    f["attempt"] = attempt;
    f["duration_ms"] = ms_between(t0, m_clock.now());
    if (err) f["error"] = err->to_json();
    if (st == "failed") f["on_error"] = std::string(to_string(policy));
    for (auto& [k, v] : extra.items()) f[k] = v;
    // Synced with the next step's start (or the run's end), before anything else is acted on.
    ctx.audit("step.end", std::move(f), false);
  };
  // Outside a transactional phase, the code that just ran must leave no transaction behind:
  // one its SQL began and left open (or failed) is rolled back, and the step fails.
  auto settle = [&](call_result& res) {
    if (phase.transaction || !m_target) return;
    auto why = m_target->close_stray_transaction();
    if (!why) return;
    if (res.error) {
      res.error->message += "; " + *why;
      return;
    }
    step_error err;
    err.kind = error_kind::step_failed;
    err.klass = "transaction_open";
    err.message = describe_step(book, phase, step) + ": " + *why;
    err.hint = "End the transaction in the same step (COMMIT), or leave BEGIN/COMMIT out and let each statement "
               "commit on its own.";
    res.error = std::move(err);
  };
  auto fail = [&](step_error err, int attempt) {
    if (phase.transaction) explain_transaction_error(err, book, phase, step);
    end_record("failed", attempt, &err, json::object());
    m_out.step_finished(step, policy == on_error::cont ? "failed, continuing" : "failed",
                        milliseconds(ms_between(t0, m_clock.now())), &err, "");
    return step_result{step_status::failed, std::move(err)};
  };

  // Every step starts from a known session state, whatever earlier steps SET.
  if (m_target) m_target->start_step();
  if (step.has_when) {
    arm(ctx, book, phase, step, call);
    call_result w = step.body->when(call);
    settle(w);
    if (w.error) return fail(*w.error, 1);
    if (!(w.value.is_boolean() && w.value.get<bool>()) && !w.value.is_null()) {
      std::string reason = w.value.is_string() ? w.value.get<std::string>() : "its condition is false";
      end_record("skipped", 1, nullptr, json{{"reason", reason}});
      m_out.step_finished(step, "skipped", milliseconds(ms_between(t0, m_clock.now())), nullptr, reason);
      return {step_status::skipped, std::nullopt};
    }
  }

  if (step.confirm) {
    json f = base;
    f["text"] = *step.confirm;
    bool yes = false;
    if (opts.yes) {
      yes = true;
      f["by"] = "--yes";
    } else if (m_confirm.interactive()) {
      yes = m_confirm.ask("Step '" + step.name + "' of phase '" + phase.name + "' is destructive: " + *step.confirm +
                          (step.skip_on_decline ? "\n(anything but yes skips this step; the run goes on)" : ""));
      f["by"] = "terminal";
    } else {
      f["by"] = "none";
    }
    f["answer"] = yes ? "yes" : "no";
    f["operator"] = operator_identity();
    if (step.skip_on_decline) f["on_decline"] = "skip";
    const bool asked = f["by"] != "none";
    ctx.audit("confirm", std::move(f));
    if (!yes && step.skip_on_decline) {
      std::string reason = std::string(!asked ? "not confirmed: nobody to ask and no --yes"
                                                          : "declined on the terminal") +
                           " (" + *step.confirm + ")";
      end_record("skipped", 1, nullptr, json{{"reason", reason}, {"declined", true}});
      m_out.step_finished(step, "skipped", milliseconds(ms_between(t0, m_clock.now())), nullptr, reason);
      return {step_status::skipped, std::nullopt};
    }
    if (!yes) {
      step_error err;
      err.kind = error_kind::not_confirmed;
      err.klass = "not_confirmed";
      err.message = describe_step(book, phase, step) + " needs confirmation (" + *step.confirm + ") and was not confirmed";
      return fail(std::move(err), 1);
    }
  }

  int attempts = std::max(1, step.retry.attempts);
  std::optional<step_error> last;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    if (attempt > 1) {
      milliseconds delay = backoff_delay(step.retry, attempt);
      json f = base;
      f["attempt"] = attempt;
      f["delay_ms"] = delay.count();
      f["error"] = last->to_json();
      ctx.audit("step.retry", std::move(f));
      m_out.step_retry(step, attempt, delay, *last);
      if (!m_clock.sleep_for(delay, ctx.stop()) || ctx.stop().requested()) {
        step_error err;
        err.kind = error_kind::cancelled;
        err.klass = "cancelled";
        err.message = describe_step(book, phase, step) + " was interrupted by the operator while waiting to retry";
        return fail(std::move(err), attempt - 1);
      }
      if (m_target) m_target->start_step();
    }
    call.attempt = attempt;
    // In a transactional phase every attempt runs in a savepoint of its own: a failure rolls
    // back exactly this step's work and leaves the phase's transaction usable.
    std::unique_ptr<db::savepoint> sp;
    if (phase.transaction) {
      try {
        ctx.set_limits(std::nullopt, milliseconds(0), milliseconds(0));
        sp = std::make_unique<db::savepoint>(ctx.database(), "step " + step.name);
      } catch (const std::exception& e) {
        return fail(step_error_from(e), attempt);  // the transaction is gone: no retry here
      }
    }
    arm(ctx, book, phase, step, call);
    call_result r = step.body->run(call);
    settle(r);
    if (!r.error && step.has_verify) {
      arm(ctx, book, phase, step, call);
      call_result v = step.body->verify(call);
      settle(v);
      json f = base;
      f["ok"] = v.ok();
      if (v.error) f["error"] = v.error->to_json();
      ctx.audit("verify", std::move(f), false);
      if (v.error) {
        if (sp) rollback_savepoint(*sp);
        return fail(*v.error, attempt);
      }
    }
    ctx.set_limits(std::nullopt, milliseconds(0), milliseconds(0));
    if (r.error) {
      last = r.error;
      bool tx_lost = false;
      if (sp) tx_lost = !rollback_savepoint(*sp);
      if (!tx_lost && attempt < attempts && retryable(step.retry, *r.error)) continue;
      return fail(*r.error, attempt);
    }
    if (sp) {
      try {
        sp->release();
      } catch (const std::exception& e) {
        step_error err = step_error_from(e);
        if (auto how = m_target->ended_by_sql()) {  // the error it raised was caught (pcall)
          err.sqlstate = "2D000";
          err.message = "its SQL ended the phase's transaction (" + std::string(db::to_string(*how)) + "): " + err.message;
        }
        return fail(std::move(err), attempt);
      }
    }
    json extra = json::object();
    if (!r.value.is_null()) extra["result"] = r.value;
    end_record("succeeded", attempt, nullptr, std::move(extra));
    m_out.step_finished(step, "succeeded", milliseconds(ms_between(t0, m_clock.now())), nullptr,
                        attempt > 1 ? "after " + std::to_string(attempt) + " attempts" : "");
    return {step_status::succeeded, std::nullopt, std::move(r.value)};
  }
  return fail(last.value_or(step_error{}), attempts);
}

}  // namespace rb::run
