// Where a run's end meets incidents: a failed run opens (or joins) one, a successful run
// resolves the open ones of its runbook and target.
#pragma once

#include <string>
#include <vector>

#include "engine/incident/escalator.hpp"
#include "engine/run/executor.hpp"

namespace rb::incident {

/// The cause of incidents opened by a run's end (one incident per runbook and target for
/// failed, rolled-back and rollback-failed runs alike; the worst severity wins).
inline constexpr const char* k_run_failed_cause = "run failed";

/// What on_run_end did, for the operator.
struct run_end_report {
  std::vector<escalator::result> changes;
  std::string error;  ///< set when the journal could not be read or written (the run's outcome stands)
  /// One line per change ("incident INC-7F3A2C opened (level 1): told team"), and the error.
  std::vector<std::string> lines() const;
};

/// Called once where a run finishes (and after resume and rollback). When the run ended
/// `failed`, `rolled_back` or `rollback_failed` and the runbook's `escalation` or the config's
/// `default_escalation` names a policy, opens an incident for (runbook, target, "run failed")
/// or joins the open one (severity `critical` for rollback_failed, else `error`). When it
/// succeeded, resolves every open incident of the same runbook and target that an earlier run
/// opened (those this run raised with escalate{} or a watch stay open). Never throws: an
/// incident problem never changes the run's outcome.
run_end_report on_run_end(audit::log& journal, const policy_set& policies, alert::notifier* notifier,
                          const clock& clk, const run::run_outcome& outcome, const run::runbook_def& book,
                          const std::string& target);

}  // namespace rb::incident
