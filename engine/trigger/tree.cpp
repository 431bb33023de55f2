// A watch's decision tree: investigations, re-arming, then the first armed trigger that holds.
#include "engine/trigger/tree.hpp"

#include <exception>

#include "engine/util/duration.hpp"

namespace rb::trigger {

std::optional<bool> condition::truth(const sample& s) const {
  value v;
  if (expr) {
    v = expr->evaluate(s);
  } else if (fn) {
    try {
      v = fn(s);
    } catch (const std::exception&) {
      return std::nullopt;  // the runner audits the function's error; a broken condition never fires
    }
  }
  if (std::holds_alternative<std::monostate>(v)) return std::nullopt;
  if (auto b = std::get_if<bool>(&v)) return *b;
  if (auto d = std::get_if<double>(&v)) return *d != 0;
  return !std::get<std::string>(v).empty();
}

std::string_view kind_name(action::kind k) {
  switch (k) {
    case action::kind::rollback: return "rollback";
    case action::kind::abort: return "abort";
    case action::kind::escalate: return "escalate";
    case action::kind::alert: return "alert";
    case action::kind::investigate: return "investigate";
    case action::kind::call: return "function";
  }
  return "?";
}

std::string_view kind_name(decision::kind k) {
  switch (k) {
    case decision::kind::fired: return "fired";
    case decision::kind::investigation_started: return "investigation_started";
    case decision::kind::investigation_cleared: return "investigation_cleared";
    case decision::kind::investigation_expired: return "investigation_expired";
    case decision::kind::rearmed: return "rearmed";
  }
  return "?";
}

std::string action::describe() const {
  std::string out(kind_name(what));
  if (what == kind::escalate || what == kind::alert) {
    std::string fields;
    for (const auto& [k, v] : args.items()) {
      if (!fields.empty()) fields += ", ";
      fields += k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
    }
    out += "{" + fields + "}";
  } else if (what == kind::investigate) {
    out += " " + format_duration(window);
    if (unless) out += " unless " + unless->text;
    out += ", then " + (then ? then->describe() : std::string("nothing"));
  }
  return out;
}

tree::tree(std::vector<trigger_def> triggers) : m_triggers(std::move(triggers)), m_state(m_triggers.size()) {}

const action& tree::investigation(std::size_t i) const {
  const action* a = &m_triggers[i].act;
  for (int d = 0; d < m_state[i].depth && a->then; ++d) a = a->then.get();
  return *a;
}

std::vector<decision> tree::evaluate(const sample& s, milliseconds elapsed) {
  std::vector<decision> out;
  bool acted = false;
  for (auto& st : m_state) st.acted_now = false;
  auto note = [&](decision::kind k, std::size_t i, const std::string& cond, const action* act) {
    out.push_back(decision{k, m_triggers[i].name, cond, act, elapsed});
    if (act) acted = m_state[i].acted_now = true;
  };

  // 1. Investigations under way.
  for (std::size_t i = 0; i < m_triggers.size(); ++i) {
    trigger_state& st = m_state[i];
    if (!st.investigating_since) continue;
    const action& inv = investigation(i);
    if (inv.unless && inv.unless->holds(s)) {
      // The trigger stands down like one that fired: armed again at once only when its
      // condition is over; else it re-arms later (step 2), so an inner `unless` that differs
      // from `when` does not start the same investigation again at this very sample.
      const trigger_def& t = m_triggers[i];
      st.investigating_since.reset();
      st.depth = 0;
      st.armed = t.clear_when ? t.clear_when->holds(s) : t.when.truth(s) == false;
      st.acted_now = true;
      st.holding_since.reset();
      note(decision::kind::investigation_cleared, i, inv.unless->text, nullptr);
      continue;
    }
    if (acted || elapsed - *st.investigating_since < inv.window) continue;
    const action* next = inv.then.get();
    if (next && next->what == action::kind::investigate) {
      ++st.depth;
      st.investigating_since = elapsed;
      note(decision::kind::investigation_expired, i, inv.unless ? inv.unless->text : "", nullptr);
      note(decision::kind::investigation_started, i, next->unless ? next->unless->text : "", nullptr);
      continue;
    }
    st.investigating_since.reset();
    st.depth = 0;
    note(decision::kind::investigation_expired, i, inv.unless ? inv.unless->text : "", next);
    if (!next) acted = true;  // an investigate without an action still ends this sample's turn
  }

  // 2. Fired triggers re-arm.
  for (std::size_t i = 0; i < m_triggers.size(); ++i) {
    trigger_state& st = m_state[i];
    const trigger_def& t = m_triggers[i];
    if (st.armed || st.investigating_since || st.acted_now) continue;
    bool clear = t.clear_when ? t.clear_when->holds(s) : t.when.truth(s) == false;
    if (!clear) continue;
    st.armed = true;
    st.holding_since.reset();
    note(decision::kind::rearmed, i, t.clear_when ? t.clear_when->text : "not (" + t.when.text + ")", nullptr);
  }

  // 3. The first armed trigger that holds, in its band, long enough.
  for (std::size_t i = 0; i < m_triggers.size(); ++i) {
    trigger_state& st = m_state[i];
    const trigger_def& t = m_triggers[i];
    if (!st.armed) continue;
    bool in_band = (!t.after || elapsed >= *t.after) && (!t.before || elapsed < *t.before);
    if (!in_band || !t.when.holds(s)) {
      st.holding_since.reset();
      continue;
    }
    if (!st.holding_since) st.holding_since = elapsed;
    if (acted) continue;  // keep counting sustained windows; one action per sample
    if (t.sustained && elapsed - *st.holding_since < *t.sustained) continue;
    st.armed = false;
    if (t.act.what == action::kind::investigate) {
      st.investigating_since = elapsed;
      st.depth = 0;
      note(decision::kind::investigation_started, i, t.when.text, nullptr);
      acted = true;
      continue;
    }
    note(decision::kind::fired, i, t.when.text, &t.act);
  }
  return out;
}

json tree::state() const {
  json out = json::object();
  for (std::size_t i = 0; i < m_triggers.size(); ++i) {
    const trigger_state& st = m_state[i];
    json t = {{"armed", st.armed}};
    if (st.holding_since) t["holding_since_ms"] = st.holding_since->count();
    if (st.investigating_since) {
      t["investigating_since_ms"] = st.investigating_since->count();
      t["depth"] = st.depth;
    }
    out[m_triggers[i].name] = std::move(t);
  }
  return out;
}

void tree::restore(const json& state) {
  if (!state.is_object()) return;
  for (std::size_t i = 0; i < m_triggers.size(); ++i) {
    auto it = state.find(m_triggers[i].name);
    if (it == state.end() || !it->is_object()) continue;
    trigger_state st;
    st.armed = it->value("armed", true);
    if (it->contains("holding_since_ms")) st.holding_since = milliseconds((*it)["holding_since_ms"].get<long long>());
    if (it->contains("investigating_since_ms")) {
      st.investigating_since = milliseconds((*it)["investigating_since_ms"].get<long long>());
      st.depth = it->value("depth", 0);
    }
    m_state[i] = st;
  }
}

}  // namespace rb::trigger
