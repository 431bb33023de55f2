// Resume after a crash: commits settled by the server, interrupted steps verified or re-run.
#include "engine/run/recovery.hpp"

#include "engine/run/context.hpp"
#include "engine/run/state.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/text.hpp"

namespace rb::run {
namespace {

std::string ways_on(const std::string& run_id) {
  return "Check what the step did, then either\n"
         "  runbook resume " + run_id + " --rerun-interrupted      to run it again (its work may then be done twice), or\n"
         "  runbook resume " + run_id + " --mark-interrupted-done  when its work is done (recorded as your decision).\n"
         "A step declared idempotent = true is run again without asking; one with a verify is checked first.";
}

}  // namespace

db::xact_fate settle_commit(target_session& target, const std::string& xid, milliseconds patience, reporter& out,
                            rb::clock& clk, const stop_source& stop) {
  if (xid.empty()) return db::xact_fate::unknown;
  auto until = clk.now() + patience;
  bool told = false;
  for (;;) {
    db::xact_fate fate = db::xact_status(target.get(), xid);
    if (fate != db::xact_fate::in_progress || clk.now() >= until || stop.requested())
      return fate;
    if (!told) {
      out.message("the COMMIT of transaction " + xid + " is still running on the server; waiting up to " +
                  format_duration(patience) + " for it to finish");
      told = true;
    }
    clk.sleep_for(std::chrono::milliseconds(100), stop);
  }
}

step_error commit_in_doubt(const runbook_def& book, const phase_def& phase, const std::string& run_id,
                           const std::string& xid, db::xact_fate fate, milliseconds patience) {
  step_error err;
  err.kind = error_kind::in_doubt;
  err.klass = "in_doubt";
  err.sqlstate = "08007";
  err.source = phase.where.file;
  err.line = phase.where.line;
  std::string what = "the COMMIT of phase '" + phase.name + "' of runbook '" + book.name + "' (transaction " + xid + ")";
  if (fate == db::xact_fate::in_progress) {
    err.message = what + " is still running on the server after " + format_duration(patience) +
                  ", so its outcome is not known yet. Nothing was run again. Resume again once it has finished "
                  "('select pg_xact_status(''" + xid + "'')' says committed or aborted): runbook resume " + run_id;
  } else {
    err.message = what + " was interrupted by a crash, and the server cannot say how it ended" +
                  (xid.empty() ? std::string(" (no transaction id was recorded)")
                               : " (pg_xact_status is NULL or refused: the transaction is too old to tell, or this is "
                                 "not the server the run used)") +
                  ". Nothing was run again and nothing was rolled back: check by hand whether the phase's work is in "
                  "the database before going on";
  }
  return err;
}

void require_decided(const runbook_def& book, const run_state& state, const run_options& opts) {
  if (opts.rerun_interrupted || opts.mark_interrupted_done) return;
  std::vector<std::string> stuck;
  for (const auto& p : book.phases) {
    if (p.transaction) continue;  // its transaction died with the process: nothing of it stands
    for (const auto& s : p.steps)
      if (state.step_interrupted.count({p.name, s.name}) && !state.step_done(p.name, s.name) && !s.has_verify &&
          !s.idempotent)
        stuck.push_back(describe_step(book, p, s));
  }
  if (stuck.empty()) return;
  throw error(error_kind::usage,
              "run " + state.run_id + " cannot go on by itself: " + join(stuck, "; ") +
                  (stuck.size() == 1 ? " was" : " were") +
                  " interrupted outside a transaction, after it started and before it finished. Its work "
                  "may be done in full, in part or not at all, and running it again could do it twice. Nothing was "
                  "run.\n" + ways_on(state.run_id));
}

executor::recovery executor::recover_interrupted(run_context& ctx, const runbook_def& book, const phase_def& phase,
                                                 const step_def& step, const run_options& opts, std::size_t index,
                                                 std::size_t total) {
  json base = {{"phase", phase.name}, {"step", step.name}};
  ctx.set_position(&phase, &step);
  auto mark_done = [&](const std::string& by, const std::string& note) {
    json f = base;
    f["by"] = by;
    f["operator"] = operator_identity();
    ctx.audit("step.recovered", std::move(f));
    json e = base;
    e["status"] = "succeeded";
    e["recovered"] = by;
    ctx.audit("step.end", std::move(e), false);
    m_out.step_started(step, index, total);
    m_out.step_finished(step, "succeeded", milliseconds(0), nullptr, note);
    return recovery::done;
  };

  std::optional<step_error> verify_error;
  if (step.has_verify) {
    // Its verify, run on what the interrupted attempt left (it gets no result: nil).
    step_call call{book, phase, step, 1, std::nullopt, &ctx};
    arm(ctx, book, phase, step, call);
    call_result v = step.body->verify(call);
    ctx.set_limits(std::nullopt, milliseconds(0), milliseconds(0));
    json f = base;
    f["ok"] = v.ok();
    f["interrupted"] = true;
    if (v.error) f["error"] = v.error->to_json();
    ctx.audit("verify", std::move(f), false);
    if (v.ok()) return mark_done("verify", "interrupted earlier; its verify shows its work done");
    verify_error = v.error;
  }
  if (opts.mark_interrupted_done)
    return mark_done("--mark-interrupted-done", "interrupted earlier; done, says the operator");
  if (step.idempotent || opts.rerun_interrupted) {
    json f = base;
    f["because"] = step.idempotent ? "idempotent" : "--rerun-interrupted";
    if (verify_error) f["verify_error"] = verify_error->to_json();
    f["operator"] = operator_identity();
    ctx.audit("step.rerun", std::move(f));
    m_out.message("step '" + step.name + "' was interrupted earlier; it runs again (" +
                  (step.idempotent ? "it is idempotent" : "--rerun-interrupted") + ")");
    return recovery::rerun;
  }
  // Its verify says the work is not (all) there, and nothing says running it again is safe.
  json f = base;
  f["verify_error"] = verify_error ? verify_error->to_json() : json(nullptr);
  ctx.audit("step.in_doubt", std::move(f));
  throw error(error_kind::usage,
              "run " + ctx.run_id() + " stops before " + describe_step(book, phase, step) +
                  ": it was interrupted outside a transaction, and its verify does not show its work done (" +
                  (verify_error ? verify_error->describe() : std::string("no error")) +
                  "). Its work may be done in part or not at all.\n" + ways_on(ctx.run_id()));
}

}  // namespace rb::run
