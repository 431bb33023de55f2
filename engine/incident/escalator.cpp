// The escalator: transitions followed by their notifications, and the timed climb.
#include "engine/incident/escalator.hpp"

#include "engine/error.hpp"
#include "engine/util/text.hpp"

namespace rb::incident {

escalator::result escalator::tell(change c) {
  result r;
  r.what = std::move(c);
  if (!r.what.changed) return r;
  const incident& inc = r.what.inc;
  alert::notification n;
  n.severity = inc.severity;
  n.summary = inc.summary.empty() ? inc.runbook + " on " + inc.target : inc.summary;
  n.action = r.what.action;
  n.dedup = inc.dedup;
  n.runbook = inc.runbook;
  n.target = inc.target;
  n.run_id = inc.source_run;
  n.incident = inc.id;
  n.level = inc.level;
  n.details = {{"incident", inc.id}, {"state", inc.state}, {"level", inc.level}, {"cause", inc.cause},
               {"policy", inc.escalation.name}, {"opened", rfc3339(inc.opened_at)}};
  if (!inc.acked_by.empty()) n.details["acknowledged_by"] = inc.acked_by;
  if (!inc.note.empty()) n.details["note"] = inc.note;
  for (const auto& channel : r.what.notify) {
    if (!m_notifier) {
      r.undelivered.push_back(channel + ": no alert dispatcher in this process");
      continue;
    }
    try {
      r.delivered.push_back(m_notifier->send(channel, n));
    } catch (const std::exception& e) {
      // Not configured (or the dispatcher refused it): audited, and the others still go out.
      r.undelivered.push_back(channel + ": " + e.what());
      try {
        m_store.journal().append(inc.id, "alert.failed",
                                 {{"channel", channel}, {"incident", inc.id}, {"action", n.action},
                                  {"level", inc.level}, {"error", e.what()}});
      } catch (const std::exception&) {
        // the journal is unwritable: the change itself was recorded, the caller sees undelivered
      }
    }
  }
  return r;
}

escalator::result escalator::open_or_join(const open_request& r) {
  return tell(m_store.open_or_join(r, m_clock.wall_now()));
}

escalator::result escalator::ack(const std::string& id, const std::string& by, const std::string& note) {
  m_store.refresh();
  std::string exact = m_store.require(id).id;
  return tell(m_store.ack(exact, by, note, m_clock.wall_now()));
}

escalator::result escalator::resolve(const std::string& id, const std::string& by, const std::string& note,
                                     const std::string& reason) {
  m_store.refresh();
  std::string exact = m_store.require(id).id;
  return tell(m_store.resolve(exact, by, note, reason, m_clock.wall_now()));
}

std::vector<escalator::result> escalator::advance() {
  std::vector<result> out;
  m_store.refresh();
  wall_time now = m_clock.wall_now();
  std::vector<std::string> due;
  for (const incident* inc : m_store.list())
    if (auto when = inc->next_due(); when && *when <= now) due.push_back(inc->id);
  for (const auto& id : due) {
    for (;;) {
      const incident* inc = m_store.find(id);
      auto when = inc ? inc->next_due() : std::nullopt;
      if (!when || *when > now) break;
      result r = tell(m_store.escalate(id, inc->level + 1, now));
      if (!r.what.changed) break;  // another process climbed it, or it was acknowledged
      out.push_back(std::move(r));
    }
  }
  return out;
}

std::optional<wall_time> escalator::next_due() const {
  std::optional<wall_time> first;
  for (const incident* inc : m_store.list())
    if (auto when = inc->next_due(); when && (!first || *when < *first)) first = when;
  return first;
}

std::string describe(const escalator::result& r) {
  const incident& inc = r.what.inc;
  std::string what;
  if (!r.what.changed) {
    what = "incident " + inc.id + " unchanged (" + r.what.why + ")";
  } else if (r.what.action == "trigger") {
    what = "incident " + inc.id + (r.what.event == event::open ? " opened" : " escalated") + " at level " +
           std::to_string(inc.level) + " (" + inc.severity + ", " + inc.runbook + " on " + inc.target + ")";
  } else if (r.what.action == "acknowledge") {
    what = "incident " + inc.id + " acknowledged by " + inc.acked_by;
  } else {
    what = "incident " + inc.id + " resolved";
  }
  if (!r.what.notify.empty()) {
    std::vector<std::string> told;
    for (const auto& c : r.what.notify) {
      bool failed = false;
      for (const auto& u : r.undelivered) failed = failed || u.rfind(c + ":", 0) == 0;
      if (!failed) told.push_back(c);
    }
    if (!told.empty()) what += ": told " + join(told, ", ");
    for (const auto& u : r.undelivered) what += "; not told " + u;
  }
  return what;
}

}  // namespace rb::incident
