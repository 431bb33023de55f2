// Incident state from the audit journal; conditional transitions under the journal's lock.
#include "engine/incident/store.hpp"

#include <algorithm>
#include <cctype>

#include "engine/error.hpp"
#include "engine/util/clock.hpp"
#include "engine/util/hash.hpp"
#include "engine/util/text.hpp"

namespace rb::incident {
namespace {

wall_time time_of(const json& rec) {
  std::string at = rec.value("at", rec.value("ts", ""));
  if (auto t = parse_rfc3339(at)) return *t;
  return wall_time{};
}

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::toupper(c); });
  return out;
}

json notified(std::string_view action, int level, const std::vector<std::string>& channels) {
  return {{"action", action}, {"level", level}, {"notify", channels}};
}

}  // namespace

// ---- incident --------------------------------------------------------------------------

std::optional<wall_time> incident::next_due() const {
  if (state != state::open || escalation.levels.empty() || level >= escalation.total_levels()) return std::nullopt;
  return opened_at + escalation.due_after(level + 1);
}

json incident::to_json(wall_time now) const {
  auto age = std::chrono::duration_cast<std::chrono::seconds>(now - opened_at).count();
  json j = {{"id", id},
            {"state", state},
            {"level", level},
            {"levels", escalation.total_levels()},
            {"severity", severity},
            {"runbook", runbook},
            {"target", target},
            {"cause", cause},
            {"summary", summary},
            {"dedup_key", dedup},
            {"policy", escalation.name},
            {"opened", rfc3339(opened_at)},
            {"age_s", age < 0 ? 0 : age},
            {"changed", rfc3339(changed_at)},
            {"last_notification", last_notification}};
  if (!source_run.empty()) j["run"] = source_run;
  if (!acked_by.empty()) j["acknowledged_by"] = acked_by;
  if (!resolved_by.empty()) j["resolved_by"] = resolved_by;
  if (!note.empty()) j["note"] = note;
  if (auto due = next_due()) j["next_level_due"] = rfc3339(*due);
  return j;
}

std::string make_dedup_key(std::string_view runbook, std::string_view target, std::string_view cause) {
  // JSON framing keeps ("a/b", "c") and ("a", "b/c") apart.
  json parts = json::array({runbook, target, cause});
  return "rb-" + sha256_hex(parts.dump()).substr(0, 32);
}

std::string new_incident_id() { return "INC-" + upper(random_hex(3)); }

int severity_rank(std::string_view s) {
  if (s == "critical") return 4;
  if (s == "error") return 3;
  if (s == "warning") return 2;
  if (s == "info") return 1;
  return 0;
}

bool valid_severity(std::string_view s) { return severity_rank(s) > 0; }

// ---- store -----------------------------------------------------------------------------

store::store(audit::log& journal) : m_log(journal) { refresh(); }

void store::refresh() { apply_all(audit::read_since(m_log.path(), m_offset)); }

void store::apply(const json& rec) {
  std::string ev = rec.value("event", "");
  if (ev.rfind("incident.", 0) != 0) return;
  std::string id = rec.value("incident", "");
  if (id.empty()) return;
  wall_time at = time_of(rec);
  if (ev == event::open) {
    if (m_incidents.count(id)) return;
    incident inc;
    inc.id = id;
    inc.dedup = rec.value("dedup_key", "");
    inc.runbook = rec.value("runbook", "");
    inc.target = rec.value("target", "");
    inc.cause = rec.value("cause", "");
    inc.severity = rec.value("severity", "error");
    inc.summary = rec.value("summary", "");
    inc.source_run = rec.value("source_run", "");
    inc.level = rec.value("level", 1);
    inc.opened_at = inc.changed_at = at;
    try {
      inc.escalation = policy::from_json(rec.value("policy", json()));
    } catch (const error&) {
      // a damaged snapshot: the incident is listed, but it does not climb
    }
    m_order.push_back(id);
    m_incidents.emplace(id, std::move(inc));
  }
  incident* inc = lookup(id);
  if (!inc) return;
  inc->changed_at = at;
  if (ev == event::escalate) {
    inc->level = std::max(inc->level, rec.value("level", inc->level));
    std::string sev = rec.value("severity", inc->severity);
    if (severity_rank(sev) > severity_rank(inc->severity)) inc->severity = sev;
  } else if (ev == event::ack) {
    if (inc->state == state::open) inc->state = state::acknowledged;
    inc->acked_by = rec.value("by", "");
    inc->note = rec.value("note", inc->note);
  } else if (ev == event::resolve) {
    inc->state = state::resolved;
    inc->resolved_by = rec.value("by", "");
    if (rec.contains("note") && !rec["note"].get<std::string>().empty()) inc->note = rec["note"];
  }
  if (rec.value("action", "") == "trigger" && rec.contains("notify") && rec["notify"].is_array())
    for (const auto& ch : rec["notify"])
      if (ch.is_string() && std::find(inc->told.begin(), inc->told.end(), ch.get<std::string>()) == inc->told.end())
        inc->told.push_back(ch.get<std::string>());
  if (rec.contains("action")) {
    inc->last_notification = {{"action", rec.value("action", "")},
                              {"level", rec.value("level", inc->level)},
                              {"channels", rec.value("notify", json::array())},
                              {"at", rfc3339(at)}};
  }
}

incident* store::lookup(const std::string& id) {
  auto it = m_incidents.find(id);
  return it == m_incidents.end() ? nullptr : &it->second;
}

std::vector<const incident*> store::list() const {
  std::vector<const incident*> out;
  for (const auto& id : m_order) out.push_back(&m_incidents.at(id));
  return out;
}

const incident* store::find(std::string_view id) const {
  auto it = m_incidents.find(upper(id));
  return it == m_incidents.end() ? nullptr : &it->second;
}

const incident& store::require(std::string_view id) const {
  if (const incident* inc = find(id)) return *inc;
  std::vector<std::string> ids(m_order.begin(), m_order.end());
  throw error(error_kind::usage, "no incident '" + std::string(id) + "' in the audit log '" + m_log.path().string() + "'" +
                                     did_you_mean(upper(id), ids) + "; 'runbook incidents --all' lists them");
}

const incident* store::open_for(const std::string& dedup) const {
  for (auto it = m_order.rbegin(); it != m_order.rend(); ++it) {
    const incident& inc = m_incidents.at(*it);
    if (inc.dedup == dedup && inc.is_open()) return &inc;
  }
  return nullptr;
}

std::optional<json> store::append_if(const std::function<std::optional<audit::log::entry>()>& decide) {
  std::optional<json> rec = m_log.append_if(m_offset, [&](const std::vector<json>& since) {
    apply_all(since);
    return decide();
  });
  if (rec) apply(*rec);
  return rec;
}

/// The record for an incident: run = its id.
static audit::log::entry entry_for(std::string_view ev, const std::string& id, json fields) {
  fields["incident"] = id;
  return {id, std::string(ev), std::move(fields)};
}

change store::open_or_join(const open_request& r, wall_time now) {
  if (!r.escalation || r.escalation->levels.empty())
    throw error(error_kind::internal, "an incident needs an escalation policy with levels");
  std::string dedup = make_dedup_key(r.runbook, r.target, r.cause);
  std::string id;
  std::optional<json> written = append_if([&]() -> std::optional<audit::log::entry> {
    json f;
    std::string_view ev;
    if (const incident* open = open_for(dedup)) {
      id = open->id;
      int level = std::clamp(r.level, 1, std::max(1, open->escalation.total_levels()));
      bool higher_level = level > open->level;
      bool higher_sev = severity_rank(r.severity) > severity_rank(open->severity);
      // Joined: an acknowledged incident is being handled and hears nothing new (PagerDuty).
      if (open->state != state::open || (!higher_level && !higher_sev)) return std::nullopt;
      ev = event::escalate;
      int to = std::max(level, open->level);
      // A raised level tells that level's channels; a raised severity alone, the current ones.
      f = notified("trigger", to, open->escalation.at(to).notify);
      f["severity"] = higher_sev ? r.severity : open->severity;
      f["reason"] = "raised";
      f["from"] = open->level;
      if (!r.summary.empty()) f["summary"] = r.summary;
    } else {
      do id = new_incident_id();
      while (m_incidents.count(id));
      ev = event::open;
      int level = std::clamp(r.level, 1, r.escalation->total_levels());
      f = notified("trigger", level, r.escalation->at(level).notify);
      f["dedup_key"] = dedup;
      f["runbook"] = r.runbook;
      f["target"] = r.target;
      f["cause"] = r.cause;
      f["severity"] = r.severity;
      f["summary"] = r.summary;
      f["policy"] = r.escalation->to_json();
      if (!r.details.empty()) f["details"] = r.details;
    }
    if (!r.source_run.empty()) f["source_run"] = r.source_run;
    f["at"] = rfc3339(now);
    return entry_for(ev, id, std::move(f));
  });
  change c;
  c.inc = *lookup(id);
  if (!written) {
    c.why = "joined";
    return c;
  }
  c.changed = true;
  c.event = (*written)["event"].get<std::string>();
  c.action = "trigger";
  c.notify = (*written)["notify"].get<std::vector<std::string>>();
  return c;
}

change store::escalate(const std::string& id, int to_level, wall_time now) {
  change c;
  auto written = append_if([&]() -> std::optional<audit::log::entry> {
    const incident* inc = lookup(id);
    if (!inc) return std::nullopt;
    if (inc->state != state::open) return std::nullopt;
    if (inc->level != to_level - 1 || to_level > inc->escalation.total_levels()) return std::nullopt;
    json f = notified("trigger", to_level, inc->escalation.at(to_level).notify);
    f["from"] = inc->level;
    f["reason"] = "unacknowledged";
    f["at"] = rfc3339(now);
    return entry_for(event::escalate, id, std::move(f));
  });
  const incident* inc = lookup(id);
  if (!inc) throw error(error_kind::usage, "no incident '" + id + "'");
  c.inc = *inc;
  if (!written) {
    c.why = inc->state != state::open ? "not open" : "already at level " + std::to_string(inc->level);
    return c;
  }
  c.changed = true;
  c.event = (*written)["event"].get<std::string>();
  c.action = "trigger";
  c.notify = (*written)["notify"].get<std::vector<std::string>>();
  return c;
}

change store::ack(const std::string& id, const std::string& by, const std::string& note, wall_time now) {
  change c;
  auto written = append_if([&]() -> std::optional<audit::log::entry> {
    const incident* inc = lookup(id);
    if (!inc || inc->state != state::open) return std::nullopt;
    // Everyone told so far hears it is being handled.
    json f = notified("acknowledge", inc->level, inc->told);
    f["by"] = by;
    if (!note.empty()) f["note"] = note;
    f["at"] = rfc3339(now);
    return entry_for(event::ack, id, std::move(f));
  });
  c.inc = require(id);
  if (!written) {
    c.why = "already " + c.inc.state;
    return c;
  }
  c.changed = true;
  c.event = (*written)["event"].get<std::string>();
  c.action = "acknowledge";
  c.notify = (*written)["notify"].get<std::vector<std::string>>();
  return c;
}

change store::resolve(const std::string& id, const std::string& by, const std::string& note, const std::string& reason,
                      wall_time now) {
  change c;
  auto written = append_if([&]() -> std::optional<audit::log::entry> {
    const incident* inc = lookup(id);
    if (!inc || inc->state == state::resolved) return std::nullopt;
    json f = notified("resolve", inc->level, inc->told);
    f["by"] = by;
    f["reason"] = reason;
    if (!note.empty()) f["note"] = note;
    f["at"] = rfc3339(now);
    return entry_for(event::resolve, id, std::move(f));
  });
  c.inc = require(id);
  if (!written) {
    c.why = "already resolved";
    return c;
  }
  c.changed = true;
  c.event = (*written)["event"].get<std::string>();
  c.action = "resolve";
  c.notify = (*written)["notify"].get<std::vector<std::string>>();
  return c;
}

}  // namespace rb::incident
