// The executor: phases, steps, retries, confirmation, compensation and resume.
#include "engine/run/executor.hpp"

#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "engine/db/advisory_lock.hpp"
#include "engine/db/xact.hpp"
#include "engine/db/savepoint.hpp"
#include "engine/db/transaction.hpp"
#include "engine/run/cancel.hpp"
#include "engine/run/context.hpp"
#include "engine/run/recovery.hpp"
#include "engine/run/retry.hpp"
#include "engine/run/state.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/hash.hpp"
#include "engine/util/text.hpp"

namespace rb::run {
namespace {

long long ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration_cast<milliseconds>(b - a).count();
}

json step_fields(const phase_def& phase, const step_def& step) {
  return json{{"phase", phase.name}, {"step", step.name}};
}

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

on_error policy_for(const runbook_def& book, const phase_def& phase, const step_def& step) {
  if (step.on_err) return *step.on_err;
  if (phase.on_err) return *phase.on_err;
  return book.on_err;
}

}  // namespace

int exit_code_for(std::string_view s) {
  if (s == status::succeeded) return exit_codes::ok;
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
  // Steps with a `when` may be skipped; they are refused when reached, if they are.
  for (const auto& p : book.phases)
    for (const auto& s : p.steps)
      if (s.confirm && !s.has_when) needing.push_back("step '" + s.name + "' of phase '" + p.name + "' (" + *s.confirm + ")");
  if (!needing.empty())
    throw error(error_kind::usage, "runbook '" + book.name + "' has destructive steps that need confirmation: " +
                                       join(needing, "; ") +
                                       ". Nothing was run. Pass --yes, or run it on a terminal to confirm each one");
}

std::optional<std::chrono::steady_clock::time_point> executor::deadline_for(const runbook_def& book,
                                                                            const phase_def& phase,
                                                                            const step_def& step) const {
  milliseconds limit = step.timeout ? *step.timeout : phase.timeout ? *phase.timeout : book.timeout;
  if (limit.count() <= 0) return std::nullopt;
  return std::chrono::steady_clock::now() + limit;
}

run_outcome executor::execute(const runbook_def& book, const run_options& opts, const run_state* resumed) {
  if (!resumed) require_confirmable(book, opts, m_confirm);
  run_outcome outcome;
  outcome.run_id = resumed ? resumed->run_id : new_run_id();
  run_context ctx(m_log, m_out, outcome.run_id, book, opts.params);
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
  // Ctrl-C during a statement: cancel it on the server (the Lua hook and shell commands watch
  // the flag themselves).
  std::jthread watcher;
  if (m_target && m_target->configured()) {
    watcher = std::jthread([t = m_target](std::stop_token stop) {
      std::mutex mu;
      std::condition_variable_any cv;
      bool fired = false;
      std::unique_lock lock(mu);
      while (!stop.stop_requested()) {
        if (!fired && cancel::requested()) {
          t->cancel_running();
          fired = true;
        }
        cv.wait_for(lock, stop, std::chrono::milliseconds(50), [] { return false; });  // wakes on stop
      }
    });
  }
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
    cancel::acknowledge();  // from here on nothing is interrupted: the rollback path must run
    outcome.error = std::move(err);
    outcome.failed_step = where;
    ctx.set_failure(where, outcome.error ? outcome.error->message : "cancelled");
    ctx.set_position(&phase, nullptr);
    json f = {{"phase", phase.name}, {"status", "cancelled"}, {"duration_ms", phase_ms}};
    if (phase.transaction) f["transaction"] = std::string(tx);
    ctx.audit("phase.end", std::move(f), false);  // durable with the next record that is synced
    ctx.audit("run.cancel", {{"signal", cancel::signal_number()}, {"at", where}, {"rollback", !opts.no_rollback}});
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

  std::size_t phase_no = 0;
  for (const auto& phase : book.phases) {
    ++phase_no;
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
      db::xact_fate fate = settle_commit(*m_target, xid, opts.commit_patience, m_out);
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
      if (cancel::requested()) {
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
            fate = settle_commit(*m_target, xid, opts.commit_patience, m_out);
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
      yes = m_confirm.ask("Step '" + step.name + "' of phase '" + phase.name + "' is destructive: " + *step.confirm);
      f["by"] = "terminal";
    } else {
      f["by"] = "none";
    }
    f["answer"] = yes ? "yes" : "no";
    f["operator"] = operator_identity();
    ctx.audit("confirm", std::move(f));
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
      m_clock.sleep_for(delay);
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
    return {step_status::succeeded, std::nullopt};
  }
  return fail(last.value_or(step_error{}), attempts);
}

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
  ctx.set_target(m_target);
  ctx.set_config(m_config);
  ctx.set_notifier(m_notifier);
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

void print_dry_run(const runbook_def& book, const run_options& opts, reporter& m_out) {
  m_out.run_started(book, "", false, true);
  std::size_t index = 0, phase_no = 0, total = book.step_count();
  for (const auto& phase : book.phases) {
    m_out.phase_started(phase, ++phase_no, book.phases.size());
    for (const auto& step : phase.steps) {
      ++index;
      std::string line = "[" + std::to_string(index) + "/" + std::to_string(total) + "] would run '" + step.name + "'";
      std::vector<std::string> notes;
      if (step.has_when) notes.push_back("if its `when` allows");
      if (step.confirm) notes.push_back(std::string(opts.yes ? "confirmed by --yes: " : "asks to confirm: ") + *step.confirm);
      if (step.retry.attempts > 1)
        notes.push_back("up to " + std::to_string(step.retry.attempts) + " attempts");
      milliseconds limit = step.timeout ? *step.timeout : phase.timeout ? *phase.timeout : book.timeout;
      notes.push_back("time limit " + format_duration(limit));
      if (step.has_verify) notes.push_back("then verify");
      if (step.has_rollback) notes.push_back("has a rollback");
      line += " (" + join(notes, ", ") + ")";
      m_out.message(line);
    }
  }
}

}  // namespace rb::run
