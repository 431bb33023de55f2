// The watch loop: sample on a fixed rate, evaluate the tree, journal, act; resume from the journal.
#include "engine/trigger/watch.hpp"

#include <ctime>
#include <set>

#include "engine/util/clock.hpp"
#include "engine/util/duration.hpp"

namespace rb::trigger {
namespace {

using steady = std::chrono::steady_clock;

void check_names(const watch_def& w, const std::set<std::string>& known, const std::string& owner,
                 const std::optional<condition>& c, std::vector<std::string>& problems) {
  if (!c || !c->expr) return;
  for (const auto& n : c->expr->names())
    if (!known.count(n)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      problems.push_back("watch '" + w.name + "': " + owner + ": '" + c->text + "' reads '" + n +
                         "', which is not one of its metrics (" + (list.empty() ? "none" : list) + ")");
    }
}

void check_action(const watch_def& w, const std::set<std::string>& known, const std::string& owner, const action& a,
                  std::vector<std::string>& problems) {
  if (a.what != action::kind::investigate) return;
  if (a.window <= milliseconds(0)) problems.push_back("watch '" + w.name + "': " + owner + ": investigate needs a window such as \"10m\"");
  check_names(w, known, owner, a.unless, problems);
  if (a.then) check_action(w, known, owner, *a.then, problems);
}

/// Milliseconds since the epoch of an RFC 3339 UTC stamp, or -1.
long long epoch_ms(const std::string& ts) {
  auto t = parse_rfc3339(ts);
  if (!t) return -1;
  return std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
}

}  // namespace

std::string describe_every(const watch_def& w) {
  return w.every_fn ? "(set by the runbook's code at run time)" : format_duration(w.every);
}
std::string describe_lasting(const watch_def& w) {
  return w.lasting_fn ? "(set by the runbook's code at run time)" : format_duration(w.lasting);
}

std::vector<std::string> validate(const watch_def& w) {
  std::vector<std::string> problems;
  std::set<std::string> known;
  for (const auto& m : w.metrics) known.insert(m.name);
  if (w.every <= milliseconds(0)) problems.push_back("watch '" + w.name + "': every must be a duration such as \"30s\"");
  if (w.lasting < w.every) problems.push_back("watch '" + w.name + "': lasting must be at least every");
  if (w.metrics.empty()) problems.push_back("watch '" + w.name + "': needs metrics = { name = [[select ...]] }");
  if (w.triggers.empty()) problems.push_back("watch '" + w.name + "': needs at least one trigger");
  std::set<std::string> names;
  for (const auto& t : w.triggers) {
    std::string owner = "trigger '" + t.name + "'";
    if (!names.insert(t.name).second) problems.push_back("watch '" + w.name + "': two triggers are named '" + t.name + "'");
    check_names(w, known, owner, t.when, problems);
    check_names(w, known, owner, t.clear_when, problems);
    check_action(w, known, owner, t.act, problems);
    if (t.after && t.before && *t.after >= *t.before)
      problems.push_back("watch '" + w.name + "': " + owner + ": after (" + format_duration(*t.after) +
                         ") must come before before (" + format_duration(*t.before) + ")");
  }
  return problems;
}

std::string_view to_string(watch_end e) {
  switch (e) {
    case watch_end::completed: return "completed";
    case watch_end::rollback: return "rollback";
    case watch_end::abort: return "abort";
    case watch_end::cancelled: return "cancelled";
  }
  return "?";
}

json to_json(const sample& s, const watch_def& w) {
  json out = json::object();
  for (const auto& m : w.metrics) {
    auto it = s.find(m.name);
    if (it == s.end() || std::holds_alternative<std::monostate>(it->second)) out[m.name] = nullptr;
    else if (auto b = std::get_if<bool>(&it->second)) out[m.name] = *b;
    else if (auto d = std::get_if<double>(&it->second)) out[m.name] = *d;
    else out[m.name] = std::get<std::string>(it->second);
  }
  return out;
}

std::optional<watch_checkpoint> checkpoint_from(const std::vector<json>& records, const std::string& name,
                                                const std::string& now_utc) {
  std::optional<watch_checkpoint> cp;
  long long started = -1, last_elapsed = 0;
  for (const auto& r : records) {
    if (r.value("watch", "") != name) continue;
    std::string event = r.value("event", "");
    if (event == "watch.start") {
      cp = watch_checkpoint{};
      started = epoch_ms(r.value("ts", ""));
      continue;
    }
    if (!cp) continue;
    if (r.contains("state")) cp->state = r["state"];
    if (r.contains("elapsed_ms") && r["elapsed_ms"].is_number_integer()) last_elapsed = r["elapsed_ms"].get<long long>();
    if (r.contains("failed_in_row")) cp->failed_in_row = r["failed_in_row"].get<int>();
    if (r.contains("samples")) cp->samples = r["samples"].get<long long>();
    if (event == "decision" && r.contains("ends")) {
      watch_result res;
      std::string ends = r["ends"].get<std::string>();
      res.end = ends == "rollback" ? watch_end::rollback : ends == "abort" ? watch_end::abort : watch_end::completed;
      res.trigger = r.value("trigger", "");
      res.reason = r.value("reason", "");
      cp->ended = res;
    }
    if (event == "watch.end") {  // finished: a resume carries on after it
      watch_result res;
      std::string end = r.value("end", "completed");
      res.end = end == "rollback"    ? watch_end::rollback
                : end == "abort"     ? watch_end::abort
                : end == "cancelled" ? watch_end::cancelled
                                     : watch_end::completed;
      res.trigger = r.value("trigger", "");
      res.reason = r.value("reason", "");
      res.samples = r.value("samples", 0LL);
      if (res.end != watch_end::cancelled) cp->ended = res;  // a cancelled watch resumes
    }
  }
  if (cp && started >= 0) {
    long long now = epoch_ms(now_utc);
    if (now >= started) cp->elapsed = milliseconds(now - started);
  }
  // Never less than the journal's own count (a wall clock stepped back, a fake clock).
  if (cp && cp->elapsed.count() < last_elapsed) cp->elapsed = milliseconds(last_elapsed);
  return cp;
}

watch_runner::watch_runner(const watch_def& w, watch_host& host) : m_def(w), m_host(host), m_tree(w.triggers) {}

void watch_runner::fold(const sample& s, milliseconds elapsed) {
  if (m_summary_count == 0) {
    m_summary = json::object();
    m_summary_from = elapsed;
  }
  m_summary_to = elapsed;
  ++m_summary_count;
  for (const auto& [name, v] : s) {
    auto d = std::get_if<double>(&v);
    json& m = m_summary[name];
    if (!d) {
      m["last"] = to_json(sample{{name, v}}, m_def)[name];
      continue;
    }
    if (!m.contains("min") || *d < m["min"].get<double>()) m["min"] = *d;
    if (!m.contains("max") || *d > m["max"].get<double>()) m["max"] = *d;
    m["last"] = *d;
  }
}

void watch_runner::flush_summary() {
  if (m_summary_count == 0) return;
  m_host.record("sample.summary",
                {{"watch", m_def.name},
                 {"from_ms", m_summary_from.count()},
                 {"to_ms", m_summary_to.count()},
                 {"count", m_summary_count},
                 {"metrics", m_summary}},
                false);
  m_summary_count = 0;
}

watch_result watch_runner::run(const std::optional<watch_checkpoint>& from) {
  watch_result result;
  int failed_in_row = 0;
  milliseconds offset{0};
  if (from) {
    if (from->ended) return *from->ended;  // its action was journaled: the executor carries on with it
    m_tree.restore(from->state);
    failed_in_row = from->failed_in_row;
    result.samples = from->samples;
    offset = from->elapsed;
    m_host.record("watch.resume", {{"watch", m_def.name}, {"elapsed_ms", offset.count()}, {"state", from->state}}, true);
  } else {
    json triggers = json::array();
    for (const auto& t : m_def.triggers) triggers.push_back({{"name", t.name}, {"when", t.when.text}, {"action", t.act.describe()}});
    json metrics = json::object();  // name -> its SQL as written, or "function"
    for (const auto& m : m_def.metrics) metrics[m.name] = m.fn ? std::string("function") : m.sql;
    m_host.record("watch.start",
                  {{"watch", m_def.name}, {"every_ms", m_def.every.count()}, {"lasting_ms", m_def.lasting.count()},
                   {"metrics", metrics}, {"triggers", triggers}},
                  true);
  }
  const steady::time_point began = m_host.now() - offset;
  const steady::time_point until = began + m_def.lasting;
  json last_state = m_tree.state();
  bool escalated_unavailable = failed_in_row >= k_failed_samples_escalate;

  auto finish = [&](watch_end end, std::string trigger, std::string reason) {
    flush_summary();
    result.end = end;
    result.trigger = std::move(trigger);
    result.reason = std::move(reason);
    m_host.record("watch.end", {{"watch", m_def.name}, {"end", to_string(end)}, {"trigger", result.trigger},
                                {"reason", result.reason}, {"samples", result.samples}},
                  true);
    return result;
  };

  for (;;) {
    if (m_host.stopping()) return finish(watch_end::cancelled, "", "stopped by the operator");
    steady::time_point t0 = m_host.now();
    if (t0 >= until) return finish(watch_end::completed, "", "");
    milliseconds elapsed = std::chrono::duration_cast<milliseconds>(t0 - began);

    json errors = json::object();
    sample s = m_host.read(m_def, errors);
    ++result.samples;
    milliseconds took = std::chrono::duration_cast<milliseconds>(m_host.now() - t0);
    std::vector<decision> decisions = m_tree.evaluate(s, elapsed);
    json state = m_tree.state();
    m_host.show(m_def, s, elapsed, state);
    failed_in_row = errors.empty() ? 0 : failed_in_row + 1;
    bool unavailable = failed_in_row >= k_failed_samples_escalate && !escalated_unavailable;
    if (failed_in_row == 0) escalated_unavailable = false;

    json values = to_json(s, m_def);
    if (decisions.empty() && state == last_state && errors.empty() && !unavailable) {
      fold(s, elapsed);
      if (m_summary_count >= k_summary_every) flush_summary();
    } else {
      flush_summary();
      json rec = {{"watch", m_def.name}, {"elapsed_ms", elapsed.count()}, {"values", values},
                  {"duration_ms", took.count()}, {"samples", result.samples}, {"failed_in_row", failed_in_row},
                  {"state", state}};
      if (!errors.empty()) rec["errors"] = errors;
      m_host.record("sample", std::move(rec), false);
    }
    last_state = state;

    if (unavailable) {
      escalated_unavailable = true;
      std::string which;
      for (const auto& [k, v] : errors.items()) which += (which.empty() ? "" : ", ") + k;
      std::string reason = "metrics unavailable: " + which + " could not be read " +
                           std::to_string(failed_in_row) + " samples in a row";
      m_host.record("decision", {{"watch", m_def.name}, {"trigger", ""}, {"decision", "metrics_unavailable"},
                                 {"action", "escalate"}, {"reason", reason}, {"errors", errors},
                                 {"elapsed_ms", elapsed.count()}, {"state", state}, {"failed_in_row", failed_in_row}},
                    true);
      m_host.escalate({{"summary", "watch '" + m_def.name + "': " + reason}}, reason);
    }

    for (const decision& d : decisions) {
      json rec = {{"watch", m_def.name}, {"trigger", d.trigger}, {"decision", kind_name(d.what)},
                  {"condition", d.condition}, {"values", values}, {"elapsed_ms", elapsed.count()},
                  {"state", state}, {"failed_in_row", failed_in_row}, {"samples", result.samples}};
      std::string reason = d.condition.empty() ? std::string(kind_name(d.what)) : d.condition + " held";
      if (d.act) {
        rec["action"] = d.act->describe();
        reason += ": " + d.act->describe();
        if (d.act->what == action::kind::rollback || d.act->what == action::kind::abort)
          rec["ends"] = d.act->what == action::kind::rollback ? "rollback" : "abort";
      }
      rec["reason"] = reason;
      // Journaled (synced) before the action is taken: a resumed watch never takes it twice.
      m_host.record("decision", std::move(rec), d.act != nullptr);
      if (!d.act) continue;
      switch (d.act->what) {
        case action::kind::rollback:
          return finish(watch_end::rollback, d.trigger, reason);
        case action::kind::abort:
          return finish(watch_end::abort, d.trigger, reason);
        case action::kind::escalate:
          m_host.escalate(d.act->args, "watch '" + m_def.name + "', trigger '" + d.trigger + "': " + reason);
          break;
        case action::kind::alert:
          m_host.alert(d.act->args, "watch '" + m_def.name + "', trigger '" + d.trigger + "': " + reason);
          break;
        case action::kind::call:
          m_host.call(*d.act, s);
          break;
        case action::kind::investigate:
          break;  // the tree starts investigations itself
      }
    }

    // Fixed rate: the next slot after now, so a slow sample skips slots rather than bunching up.
    steady::time_point next = began + m_def.every * (elapsed / m_def.every + 1);
    long long skipped = 0;
    while (next <= m_host.now()) {
      next += m_def.every;
      ++skipped;
    }
    if (skipped > 0)  // a sample that outlasted its period: the slots it cost are on record
      m_host.record("sample.late", {{"watch", m_def.name}, {"elapsed_ms", elapsed.count()},
                                    {"duration_ms", took.count()}, {"skipped", skipped}},
                    false);
    m_host.wait_until(next < until ? next : until);
  }
}

}  // namespace rb::trigger
