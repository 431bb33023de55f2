// The executor: a run from start to end, phase by phase (its transaction and COMMIT), and resume.
// Each step is run by step_runner.cpp; compensation.cpp undoes steps; dry_run.cpp prints a plan.
#include "engine/run/executor.hpp"

#include <unistd.h>

#include "engine/db/advisory_lock.hpp"
#include "engine/db/xact.hpp"
#include "engine/db/transaction.hpp"
#include "engine/run/context.hpp"
#include "engine/run/executor_detail.hpp"
#include "engine/run/guard.hpp"
#include "engine/run/recovery.hpp"
#include "engine/run/state.hpp"
#include "engine/run/watch_phase.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/hash.hpp"
#include "engine/util/text.hpp"

namespace rb::run {
namespace {

using detail::ms_between;
using detail::step_fields;

on_error policy_for(const runbook_def& book, const phase_def& phase, const step_def& step) {
  if (step.on_err) return *step.on_err;
  if (phase.on_err) return *phase.on_err;
  return book.on_err;
}

}  // namespace

int exit_code_for(std::string_view s) {
  if (s == status::succeeded || s == status::skipped) return exit_codes::ok;
  if (s == status::succeeded_with_failures) return exit_codes::succeeded_with_failures;
  if (s == status::rollback_failed) return exit_codes::rollback_failed;
  if (s == status::cancelled) return exit_codes::cancelled;
  return exit_codes::failed;
}

json run_outcome::to_json() const {
  json j = {{"run", run_id}, {"status", status}, {"duration_ms", duration.count()}};
  if (error) j["error"] = error->to_json();
  if (!failed_step.empty()) j["failed_step"] = failed_step;
  if (!continued.empty()) j["continued"] = continued;
  if (!skip_reason.empty()) j["skip_reason"] = skip_reason;
  return j;
}

executor::executor(audit::log& log, reporter& out, clock& clk, confirmer& confirm)
    : m_log(log), m_out(out), m_clock(clk), m_confirm(confirm) {}

run_outcome executor::run(const runbook_def& book, const run_options& opts) {
  return execute(book, opts, nullptr);
}

run_outcome executor::resume(const runbook_def& book, const run_state& state, const run_options& opts) {
  bool cancelled_as_is = state.end && state.end->value("status", "") == status::cancelled &&
                         !state.end->value("rolled_back", false);
  if (state.end && !cancelled_as_is)
    throw error(error_kind::usage, "run " + state.run_id + " already ended (" + state.end->value("status", "") +
                                       "); there is nothing to resume");
  std::string recorded = state.start.value("sha256", "");
  if (recorded != book.file_sha256 && !opts.force)
    throw error(error_kind::usage, "the runbook file " + book.file.string() + " changed since run " + state.run_id +
                                       " started (sha256 " + recorded.substr(0, 12) + "… then, " +
                                       book.file_sha256.substr(0, 12) +
                                       "… now); resume with --force to run the changed file");
  if (!state.rolling_back) require_decided(book, state, opts);  // before anything is recorded
  return execute(book, opts, &state);
}

void require_confirmable(const runbook_def& book, const run_options& opts, const confirmer& confirm) {
  if (opts.yes || confirm.interactive()) return;
  std::vector<std::string> needing;
  // Steps with a `when` may be skipped; they are refused when reached, if they are. Steps
  // whose confirm says on_decline = "skip" are skipped when reached.
  for (const auto& p : book.phases)
    for (const auto& s : p.steps)
      if (s.confirm && !s.has_when && !s.skip_on_decline) needing.push_back("step '" + s.name + "' of phase '" + p.name + "' (" + *s.confirm + ")");
  if (!needing.empty())
    throw error(error_kind::usage, "runbook '" + book.name + "' has destructive steps that need confirmation: " +
                                       join(needing, "; ") +
                                       ". Nothing was run. Pass --yes, or run it on a terminal to confirm each one");
}

run_outcome executor::execute(const runbook_def& book, const run_options& opts, const run_state* resumed) {
  if (!resumed) require_confirmable(book, opts, m_confirm);
  run_outcome outcome;
  outcome.run_id = resumed ? resumed->run_id : new_run_id();
  run_context ctx(m_log, m_out, outcome.run_id, book, opts.params);
  ctx.use_services(m_clock, *m_stop);
  ctx.set_target(m_target);
  ctx.set_config(m_config);
  ctx.set_notifier(m_notifier);

  // One run per (runbook, target): taken before anything is recorded, on a session of its
  // own, so it dies with this process and never outlives a crash.
  std::unique_ptr<db::connection> lock_conn;
  std::unique_ptr<db::run_lock> lock;
  if (book.lock) {
    if (!m_target || !m_target->configured())
      throw error(error_kind::usage, "runbook '" + book.name + "' has lock = true and so needs a database target "
                                     "(--target, --dsn, RUNBOOK_DSN or --sandbox)");
    lock_conn = m_target->open_another("run lock");
    lock = std::make_unique<db::run_lock>(*lock_conn, "runbook:" + book.name, outcome.run_id, book.name);
  }
  auto t0 = m_clock.now();
  if (m_target) {
    m_target->on_statement([&ctx](const db::statement_record& r) { ctx.record_statement(r); });
  }
  // A stop requested during a statement cancels it on the server, from the requesting thread
  // (the Lua hook and shell commands watch the token themselves).
  std::optional<stop_source::callback> cancel_sql;
  if (m_target && m_target->configured())
    cancel_sql.emplace(ctx.stop().on_request([t = m_target] { t->cancel_running(); }));
  struct unhook {
    target_session* t;
    ~unhook() {
      if (t) t->on_statement(nullptr);
    }
  } unhook_guard{m_target};

  json target_json = nullptr;
  if (m_target && m_target->configured()) target_json = m_target->target().name;
  if (!resumed) {
    ctx.audit("run.start", {{"runbook", book.name},
                            {"title", book.title},
                            {"file", book.file.string()},
                            {"sha256", book.file_sha256},
                            {"params", opts.params},
                            {"target", target_json},
                            {"operator", operator_identity()},
                            {"reason", opts.reason},
                            {"host", host_name()},
                            {"pid", static_cast<long long>(::getpid())},
                            {"version", RUNBOOK_VERSION},
                            {"steps", book.step_count()},
                            {"lock", book.lock},
                            {"rehearsal", opts.rehearsal},
                            {"yes", opts.yes}});
  } else {
    ctx.audit("run.resume", {{"operator", operator_identity()},
                             {"reason", opts.reason},
                             {"host", host_name()},
                             {"pid", static_cast<long long>(::getpid())},
                             {"sha256", book.file_sha256},
                             {"target", target_json},
                             {"forced", opts.force && resumed->start.value("sha256", "") != book.file_sha256}});
  }
  m_out.run_started(book, outcome.run_id, resumed != nullptr, false);

  auto finish = [&](std::string_view st) {
    outcome.status = std::string(st);
    outcome.duration = milliseconds(ms_between(t0, m_clock.now()));
    json f = {{"status", outcome.status}, {"duration_ms", outcome.duration.count()}};
    if (outcome.error) f["error"] = outcome.error->to_json();
    if (!outcome.failed_step.empty()) f["failed_step"] = outcome.failed_step;
    if (!outcome.continued.empty()) f["continued"] = outcome.continued;
    if (!outcome.skip_reason.empty()) f["skip_reason"] = outcome.skip_reason;
    if (outcome.rolled_back || st == status::cancelled) f["rolled_back"] = outcome.rolled_back;
    ctx.set_position(nullptr, nullptr);
    ctx.audit("run.end", std::move(f));
    m_out.run_finished(outcome.status, outcome.duration, outcome.run_id, outcome.continued);
    return outcome;
  };
  auto step_succeeded = [&](const phase_def& p, const step_def& s) {
    auto it = resumed->step_end.find({p.name, s.name});
    return it != resumed->step_end.end() && it->second.value("status", "") == "succeeded";
  };
  auto phase_committed = [&](const phase_def& p) {
    auto it = resumed->phase_status.find(p.name);
    return it != resumed->phase_status.end() && it->second == status::succeeded;
  };
  // Failures that on_error = "continue" let pass before the crash still count, unless their
  // phase's transaction died with the process (the phase runs again).
  auto carry_continued = [&](const phase_def& p) {
    for (const auto& [ph, st] : resumed->continued)
      if (ph == p.name) outcome.continued.push_back(ph + "/" + st);
  };
  if (resumed)
    for (const auto& p : book.phases)
      if (!p.transaction || phase_committed(p)) carry_continued(p);

  // Steps whose work stands, in the order they ran: the compensation path undoes them
  // backwards. Steps of a transactional phase join only once its transaction commits.
  std::vector<step_ref> done;
  std::size_t total = book.step_count();
  std::size_t index = 0;

  if (resumed && resumed->rolling_back) {
    // The run was interrupted while rolling back: finish the rollback path, nothing else.
    for (const auto& p : book.phases)
      for (const auto& s : p.steps)
        if (step_succeeded(p, s) && (!p.transaction || phase_committed(p))) done.push_back({&p, &s});
    std::optional<step_error> rb_fail;
    m_out.rollback_started("continuing the interrupted rollback");
    int undone = 0;
    if (!compensate(ctx, book, done, resumed, rb_fail, undone)) {
      outcome.error = rb_fail;
      return finish(status::rollback_failed);
    }
    return finish(status::rolled_back);
  }

  // Ends the run after a failure in `phase`: per policy, stop as is or compensate.
  // `tx`: how the phase's transaction ended, as observed (db::transaction::outcome()).
  auto fail_run = [&](const phase_def& phase, const std::string& where, std::optional<step_error> err,
                      on_error policy, long long phase_ms, std::string_view tx) {
    const bool tx_rolled_back = tx == "rolled_back";
    outcome.error = std::move(err);
    outcome.failed_step = where;
    ctx.set_failure(where, outcome.error ? outcome.error->message : "");
    ctx.set_position(&phase, nullptr);
    json f = {{"phase", phase.name}, {"status", "failed"}, {"duration_ms", phase_ms}};
    if (phase.transaction) f["transaction"] = std::string(tx);
    ctx.audit("phase.end", std::move(f), false);  // durable with the next record that is synced
    // An outcome nobody can tell (the step's own SQL ended the transaction): never compensate
    // blindly, as after a COMMIT in doubt.
    if (policy == on_error::abort || tx == "in_doubt") return finish(status::failed);
    std::string why = where + " failed: " + (outcome.error ? outcome.error->describe() : "");
    ctx.audit("run.rollback", {{"reason", why}, {"steps", done.size()}});
    m_out.rollback_started(why);
    std::optional<step_error> rb_fail;
    int undone = 0;
    if (!compensate(ctx, book, done, nullptr, rb_fail, undone)) {
      outcome.error = rb_fail;
      return finish(status::rollback_failed);
    }
    // rolled_back only when something was undone: by a handler, or by a phase's ROLLBACK.
    outcome.rolled_back = undone > 0 || tx_rolled_back;
    return finish(outcome.rolled_back ? status::rolled_back : status::failed);
  };

  // The operator interrupted the run: record it, then (unless --no-rollback) roll back.
  auto cancel_run = [&](const phase_def& phase, const std::string& where, std::optional<step_error> err,
                        long long phase_ms, std::string_view tx) {
    ctx.stop().acknowledge();  // from here on nothing is interrupted: the rollback path must run
    outcome.error = std::move(err);
    outcome.failed_step = where;
    ctx.set_failure(where, outcome.error ? outcome.error->message : "cancelled");
    ctx.set_position(&phase, nullptr);
    json f = {{"phase", phase.name}, {"status", "cancelled"}, {"duration_ms", phase_ms}};
    if (phase.transaction) f["transaction"] = std::string(tx);
    ctx.audit("phase.end", std::move(f), false);  // durable with the next record that is synced
    ctx.audit("run.cancel", {{"signal", ctx.stop().signal_number()}, {"at", where}, {"rollback", !opts.no_rollback}});
    if (opts.no_rollback) {
      m_out.message("interrupted: stopped without rolling back; 'runbook rollback " + outcome.run_id +
                    "' or 'runbook resume " + outcome.run_id + "' continues later");
      return finish(status::cancelled);
    }
    m_out.rollback_started("interrupted by the operator at " + where);
    ctx.audit("run.rollback", {{"reason", "interrupted by the operator"}, {"steps", done.size()}});
    std::optional<step_error> rb_fail;
    int undone = 0;
    if (!compensate(ctx, book, done, nullptr, rb_fail, undone)) {
      outcome.error = rb_fail;
      return finish(status::rollback_failed);
    }
    outcome.rolled_back = true;
    return finish(status::cancelled);
  };

  // The runbook's guards, once, before the first phase (a resumed run passed them already).
  if (!resumed) {
    guard_verdict g = check_guards(ctx, book, nullptr);
    if (g.error) {
      outcome.error = std::move(g.error);
      outcome.failed_step = g.which();
      return finish(outcome.error->kind == error_kind::cancelled ? status::cancelled : status::failed);
    }
    if (!g.ok) {
      outcome.skip_reason = g.reason;
      return finish(status::skipped);
    }
  }

  std::size_t phase_no = 0;
  for (const auto& phase : book.phases) {
    ++phase_no;
    if (resumed && resumed->phase_status.count(phase.name) && resumed->phase_status.at(phase.name) == "skipped") {
      index += phase.steps.size();  // its guard said no before the interruption: it stays skipped
      continue;
    }
    if (resumed && phase_committed(phase)) {
      for (const auto& s : phase.steps) {
        ++index;
        if (step_succeeded(phase, s)) done.push_back({&phase, &s});
      }
      continue;
    }
    const json* pending = nullptr;
    if (resumed)
      if (auto it = resumed->commit_pending.find(phase.name); it != resumed->commit_pending.end()) pending = &it->second;
    if (pending) {
      // The process died during this phase's COMMIT: ask the server what became of it.
      ctx.set_position(&phase, nullptr);
      std::string xid = pending->value("xid", "");
      if (!m_target || !m_target->configured())
        throw error(error_kind::usage, "phase '" + phase.name + "' was committing when run " + outcome.run_id +
                                           " was interrupted; resuming it needs its database target to ask what "
                                           "became of that COMMIT (--target, --dsn or RUNBOOK_DSN)");
      db::xact_fate fate = settle_commit(*m_target, xid, opts.commit_patience, m_out, m_clock, ctx.stop());
      json f = {{"phase", phase.name}, {"xid", xid}, {"xact_status", std::string(db::to_string(fate))}};
      if (fate == db::xact_fate::committed) {
        f["action"] = "done";
        ctx.audit("phase.recovered", std::move(f));
        m_out.message("phase '" + phase.name + "': its COMMIT (transaction " + xid +
                      ") went through before the crash; its steps are done and do not run again");
        carry_continued(phase);
        for (const auto& s : phase.steps) {
          ++index;
          if (step_succeeded(phase, s)) done.push_back({&phase, &s});
        }
        ctx.audit("phase.end", {{"phase", phase.name}, {"status", "succeeded"}, {"transaction", "committed"},
                                {"xid", xid}, {"recovered", true}}, false);
        continue;
      }
      if (fate == db::xact_fate::aborted) {
        f["action"] = "rerun";
        ctx.audit("phase.recovered", std::move(f));
        m_out.message("phase '" + phase.name + "': its COMMIT (transaction " + xid +
                      ") did not go through before the crash; the phase runs again");
      } else {
        step_error err = commit_in_doubt(book, phase, outcome.run_id, xid, fate, opts.commit_patience);
        f["error"] = err.to_json();
        ctx.audit("phase.in_doubt", std::move(f));
        if (fate == db::xact_fate::in_progress) throw error(error_kind::in_doubt, err.message);  // the run stays open
        outcome.error = err;
        outcome.failed_step = phase.name + " (COMMIT)";
        ctx.audit("phase.end", {{"phase", phase.name}, {"status", "in_doubt"}, {"xid", xid}, {"duration_ms", 0}});
        return finish(status::failed);
      }
    }
    ctx.set_position(&phase, nullptr);
    // Not synced by itself: the step.start that follows is, before the step acts.
    ctx.audit("phase.start", {{"phase", phase.name}, {"index", phase_no}, {"of", book.phases.size()},
                              {"transaction", phase.transaction}}, false);
    m_out.phase_started(phase, phase_no, book.phases.size());
    auto phase_t0 = m_clock.now();
    if (!pending) {  // a phase recovered from a COMMIT that did not go through passed its guards
      guard_verdict g = check_guards(ctx, book, &phase);
      std::string where = phase.name + " (" + g.which() + ")";
      if (g.error && g.error->kind == error_kind::cancelled)
        return cancel_run(phase, where, g.error, ms_between(phase_t0, m_clock.now()), "none");
      if (g.error)
        return fail_run(phase, where, g.error, book.on_err == on_error::abort ? on_error::abort : on_error::rollback,
                        ms_between(phase_t0, m_clock.now()), "none");
      if (!g.ok) {
        index += phase.steps.size();
        json f = {{"phase", phase.name}, {"status", "skipped"}, {"reason", g.reason},
                  {"duration_ms", ms_between(phase_t0, m_clock.now())}};
        ctx.audit("phase.end", std::move(f), false);  // durable with the next record that is synced
        continue;
      }
    }

    if (phase.watch) {
      // A watch: samples until it lasted its time, or a trigger ends it (engine/run/watch_phase).
      if (resumed && resumed->phase_status.count(phase.name) && resumed->phase_status.at(phase.name) == "succeeded")
        continue;
      trigger::watch_result w = run_watch(ctx, phase, resumed);
      long long ms = ms_between(phase_t0, m_clock.now());
      if (w.end == trigger::watch_end::completed) {
        ctx.audit("phase.end", {{"phase", phase.name}, {"status", "succeeded"}, {"duration_ms", ms}, {"samples", w.samples}}, false);
        continue;
      }
      step_error err;
      if (w.end == trigger::watch_end::cancelled) {
        err.kind = error_kind::cancelled;
        err.klass = "cancelled";
        err.message = "interrupted by the operator during watch '" + phase.name + "'";
        return cancel_run(phase, phase.name, err, ms, "");
      }
      err.kind = error_kind::check_failed;
      err.klass = "watch";
      std::string which = w.trigger.empty() ? std::string() : ", trigger '" + w.trigger + "'";
      err.message = "watch '" + phase.name + "'" + which + ": " + w.reason;
      err.source = phase.where.file;
      err.line = phase.where.line;
      return fail_run(phase, phase.name, err, w.end == trigger::watch_end::abort ? on_error::abort : on_error::rollback, ms, "");
    }

    // A transactional phase: one transaction, each step in a savepoint (see execute_step).
    std::unique_ptr<db::transaction> txn;
    if (phase.transaction) {
      if (!m_target || !m_target->configured())
        throw error(error_kind::usage, "phase '" + phase.name + "' of runbook '" + book.name +
                                       "' has transaction = true and so needs a database target "
                                       "(--target, --dsn, RUNBOOK_DSN or --sandbox)");
      try {
        ctx.set_limits(std::nullopt, milliseconds(0), m_target->target().lock_timeout);
        txn = std::make_unique<db::transaction>(ctx.database());
      } catch (const std::exception& e) {
        step_error err = step_error_from(e);
        return fail_run(phase, phase.name, err, book.on_err == on_error::abort ? on_error::abort : on_error::rollback,
                        ms_between(phase_t0, m_clock.now()), "lost");
      }
    }
    std::vector<step_ref> phase_done;
    std::vector<checklist_item> checked;

    bool ended = false;
    for (const auto& step : phase.steps) {
      ++index;
      if (resumed && !phase.transaction && resumed->step_done(phase.name, step.name)) {
        if (step_succeeded(phase, step)) done.push_back({&phase, &step});
        continue;
      }
      if (resumed && !phase.transaction && resumed->step_interrupted.count({phase.name, step.name}) &&
          recover_interrupted(ctx, book, phase, step, opts, index, total) == recovery::done) {
        done.push_back({&phase, &step});
        continue;
      }
      if (ctx.stop().requested()) {
        step_error err;
        err.kind = error_kind::cancelled;
        err.klass = "cancelled";
        err.message = "interrupted by the operator before step '" + step.name + "'";
        std::string_view tx = "lost";
        if (txn) {
          try {
            txn->rollback();
          } catch (const std::exception&) {
          }
          tx = txn->outcome();
        }
        return cancel_run(phase, phase.name + "/" + step.name, err, ms_between(phase_t0, m_clock.now()), tx);
      }
      if (phase.checklist) {
        ctx.set_position(&phase, &step);
        checked.push_back(check_item(ctx, book, phase, step, opts, index, total));
        if (checked.back().outcome == "cancelled")
          return cancel_run(phase, phase.name + "/" + step.name, checked.back().error,
                            ms_between(phase_t0, m_clock.now()), "none");
        continue;
      }
      on_error policy = policy_for(book, phase, step);
      ctx.set_position(&phase, &step);
      step_result r = execute_step(ctx, book, phase, step, policy, opts, index, total);
      if (r.status == step_status::succeeded) {
        (phase.transaction ? phase_done : done).push_back({&phase, &step});
        continue;
      }
      if (r.status == step_status::skipped) continue;
      std::string where = phase.name + "/" + step.name;
      bool interrupted = r.error && r.error->kind == error_kind::cancelled;
      bool connection_lost = r.error && (r.error->kind == error_kind::connection || r.error->kind == error_kind::in_doubt);
      if (policy == on_error::cont && !interrupted && !(phase.transaction && connection_lost)) {
        outcome.continued.push_back(where);
        continue;
      }
      // The step failed for good: its savepoint is already rolled back; now the phase's
      // transaction goes too, so nothing half-applied is ever committed. Unless the step's own
      // SQL ended it first: then the audit says what that did (committed: the phase's finished
      // steps stand, and the rollback path undoes them like any other).
      std::string_view tx = "lost";
      if (txn) {
        try {
          txn->rollback();
        } catch (const std::exception&) {
          // the session is gone, and with it the transaction
        }
        tx = txn->outcome();
        if (tx == "committed")
          for (auto& d : phase_done) done.push_back(d);
      }
      ended = true;
      if (interrupted) return cancel_run(phase, where, r.error, ms_between(phase_t0, m_clock.now()), tx);
      return fail_run(phase, where, r.error, policy == on_error::cont ? on_error::rollback : policy,
                      ms_between(phase_t0, m_clock.now()), tx);
    }
    if (phase.checklist) {
      ctx.set_position(&phase, nullptr);
      if (auto err = finish_checklist(ctx, phase, checked)) {
        on_error policy = phase.on_err.value_or(book.on_err);
        if (policy == on_error::cont) {
          for (const auto& c : checked)
            if (c.outcome == "failed") outcome.continued.push_back(phase.name + "/" + c.item->name);
        } else {
          return fail_run(phase, phase.name, err, policy, ms_between(phase_t0, m_clock.now()), "none");
        }
      }
    }
    std::string xid;
    if (!ended && txn) {
      ctx.set_position(&phase, nullptr);
      try {
        db::connection& c = ctx.database();
        if (c.in_transaction()) xid = db::current_xact_id(c);
      } catch (const std::exception&) {
        // The transaction is doomed already (or the session gone): COMMIT below says why.
      }
      // Fsynced before COMMIT is sent: if this process dies before it learns the outcome,
      // resume asks the server (pg_xact_status) instead of running the phase twice.
      if (!xid.empty()) ctx.audit("phase.commit", {{"phase", phase.name}, {"xid", xid}});
      try {
        txn->commit();
      } catch (const std::exception& e) {
        step_error err = step_error_from(e);
        on_error commit_policy = book.on_err == on_error::abort ? on_error::abort : on_error::rollback;
        if (err.kind != error_kind::in_doubt)
          return fail_run(phase, phase.name + " (COMMIT)", err, commit_policy, ms_between(phase_t0, m_clock.now()), "rolled_back");
        // The answer to COMMIT was lost with the connection: ask the server, on a new session,
        // what became of the transaction. Never retried, never compensated blindly.
        db::xact_fate fate = db::xact_fate::unknown;
        if (!xid.empty()) {
          try {
            fate = settle_commit(*m_target, xid, opts.commit_patience, m_out, m_clock, ctx.stop());
          } catch (const std::exception&) {
            // the server cannot be asked now: the outcome stays unknown
          }
        }
        json f = {{"phase", phase.name}, {"xid", xid}, {"xact_status", std::string(db::to_string(fate))}};
        if (fate == db::xact_fate::aborted) {
          f["action"] = "rolled_back";
          ctx.audit("phase.recovered", std::move(f));
          err.kind = error_kind::connection;
          err.klass = "connection";
          err.message += "; the server says transaction " + xid + " was rolled back";
          return fail_run(phase, phase.name + " (COMMIT)", err, commit_policy, ms_between(phase_t0, m_clock.now()), "rolled_back");
        }
        if (fate != db::xact_fate::committed) {
          f["error"] = err.to_json();
          ctx.audit("phase.in_doubt", std::move(f));
          outcome.error = err;
          outcome.failed_step = phase.name + " (COMMIT)";
          ctx.audit("phase.end", {{"phase", phase.name}, {"status", "in_doubt"}, {"xid", xid},
                                  {"duration_ms", ms_between(phase_t0, m_clock.now())}});
          return finish(status::failed);
        }
        f["action"] = "done";
        ctx.audit("phase.recovered", std::move(f));
        m_out.message("phase '" + phase.name + "': the connection was lost during COMMIT; the server says transaction " +
                      xid + " committed");
      }
      for (auto& d : phase_done) done.push_back(d);
    }
    ctx.set_position(&phase, nullptr);
    json f = {{"phase", phase.name}, {"status", "succeeded"}, {"duration_ms", ms_between(phase_t0, m_clock.now())}};
    if (phase.transaction) f["transaction"] = "committed";
    if (!xid.empty()) f["xid"] = xid;
    ctx.audit("phase.end", std::move(f), false);  // durable with the next record that is synced
  }
  // Failures that on_error = "continue" let pass still show: schedules and monitors must see them.
  return finish(outcome.continued.empty() ? status::succeeded : status::succeeded_with_failures);
}

}  // namespace rb::run
