// A run's end: open or join an incident on failure, resolve on success.
#include "engine/incident/run_end.hpp"


namespace rb::incident {

std::vector<std::string> run_end_report::lines() const {
  std::vector<std::string> out;
  for (const auto& c : changes) out.push_back(describe(c));
  if (!error.empty()) out.push_back("incidents: " + error);
  return out;
}

run_end_report on_run_end(audit::log& journal, const policy_set& policies, alert::notifier* notifier,
                          const clock& clk, const run::run_outcome& outcome, const run::runbook_def& book,
                          const std::string& target) {
  run_end_report rep;
  try {
    bool failed = outcome.status == run::status::failed || outcome.status == run::status::rolled_back ||
                  outcome.status == run::status::rollback_failed;
    bool succeeded = outcome.status == run::status::succeeded;
    if (!failed && !succeeded) return rep;  // cancelled, succeeded with failures: nothing changes
    const policy* p = policies.for_runbook(book.escalation);
    if (failed && !p) return rep;
    store incidents(journal);
    escalator esc(incidents, notifier, clk);
    if (failed) {
      open_request r;
      r.runbook = book.name;
      r.target = target;
      r.cause = k_run_failed_cause;
      r.severity = outcome.status == run::status::rollback_failed ? "critical" : "error";
      r.summary = "runbook " + book.name + " " + outcome.status + " on " + target;
      if (outcome.error) r.summary += ": " + outcome.error->describe();
      r.source_run = outcome.run_id;
      r.escalation = p;
      r.details = {{"status", outcome.status}, {"run", outcome.run_id}};
      if (!outcome.failed_step.empty()) r.details["failed_step"] = outcome.failed_step;
      rep.changes.push_back(esc.open_or_join(r));
      return rep;
    }
    std::vector<std::string> ids;
    for (const incident* inc : incidents.list())
      // Not those this run raised itself (escalate{}, a watch's escalation): a run that
      // escalated and then ended well says nothing about whether what it escalated is over.
      if (inc->is_open() && inc->runbook == book.name && inc->target == target && inc->source_run != outcome.run_id)
        ids.push_back(inc->id);
    for (const auto& id : ids)
      rep.changes.push_back(esc.resolve(id, "run " + outcome.run_id, "", "run succeeded"));
  } catch (const std::exception& e) {
    rep.error = e.what();
  }
  return rep;
}

}  // namespace rb::incident
