// Incident state read back from the audit journal, and its transitions decided under the
// journal's lock (so that two processes never make the same change twice).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/audit/log.hpp"
#include "engine/incident/incident.hpp"

namespace rb::incident {

/// What opening (or joining) an incident asks for.
struct open_request {
  std::string runbook, target, cause;
  std::string severity = "error";
  std::string summary;
  std::string source_run;               ///< the run asking, if any
  int level = 1;                        ///< the level to open at (or raise a joined one to)
  const policy* escalation = nullptr;   ///< required: snapshotted onto a new incident
  json details = json::object();
};

/// One transition's outcome. `changed` is false when nothing was written: the change was
/// already made (by this or another process), or is refused (`why` says which).
struct change {
  incident inc;                       ///< the incident after the call
  bool changed = false;
  std::string event;                  ///< the record written: incident.open, .escalate, .ack, .resolve
  std::string action;                 ///< what to tell the channels: trigger, acknowledge, resolve
  std::vector<std::string> notify;    ///< the channels to tell, each once
  std::string why;                    ///< for no change: "already resolved", "joined", ...
};

/// Every incident of one journal. Reads only what was appended since it last looked; each
/// transition re-reads under the journal's exclusive lock before it decides, so its decision
/// holds across processes. Records carry the incident id as their `run`, and `at`: the wall
/// time of the injected clock (escalation deadlines count from it, not from `ts`).
class store {
 public:
  explicit store(audit::log& journal);

  /// Reads the records appended since the last look, by any process.
  void refresh();
  /// Incidents in the order they opened.
  std::vector<const incident*> list() const;
  /// By id, case-insensitively; null when there is none.
  const incident* find(std::string_view id) const;
  /// Throws rb::error(usage) naming the id, with a suggestion, when there is none.
  const incident& require(std::string_view id) const;
  /// The open (unresolved) incident with this dedup key, if any.
  const incident* open_for(const std::string& dedup) const;

  /// Opens an incident, or joins the open one with the same dedup key: a join raises its level
  /// or severity when the request asks for more (an `incident.escalate` with reason "raised"),
  /// unless it is acknowledged; otherwise a join writes nothing.
  change open_or_join(const open_request& r, wall_time now);
  /// Raises an open, unacknowledged incident from level to_level - 1 to to_level.
  change escalate(const std::string& id, int to_level, wall_time now);
  /// Acknowledges an open incident (stops the climb). Acknowledged already, or resolved (a
  /// resolve wins over a concurrent ack): no change.
  change ack(const std::string& id, const std::string& by, const std::string& note, wall_time now);
  /// Resolves an open or acknowledged incident. Resolved already: no change, not an error.
  change resolve(const std::string& id, const std::string& by, const std::string& note, const std::string& reason,
                 wall_time now);

  audit::log& journal() { return m_log; }

 private:
  void apply(const json& rec);
  void apply_all(const std::vector<json>& recs) {
    for (const auto& r : recs) apply(r);
  }
  incident* lookup(const std::string& id);
  /// One conditional append: `decide` sees the state after every record so far and returns
  /// the record (its run is the incident id, its fields hold "incident") or nullopt.
  std::optional<json> append_if(const std::function<std::optional<audit::log::entry>()>& decide);

  audit::log& m_log;
  std::uint64_t m_offset = 0;
  std::map<std::string, incident> m_incidents;  ///< by id
  std::vector<std::string> m_order;             ///< ids in the order they opened
};

}  // namespace rb::incident
