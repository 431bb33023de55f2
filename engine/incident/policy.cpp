// Escalation policies: parsing from the config, snapshots, due times.
#include "engine/incident/policy.hpp"

#include <algorithm>

#include "engine/error.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/text.hpp"

namespace rb::incident {
namespace {

[[noreturn]] void bad(const std::string& where, const std::string& what) {
  throw error(error_kind::bad_runbook, where + ": " + what);
}

milliseconds duration_of(const json& v, const std::string& where, const std::string& what) {
  if (v.is_number()) {
    double s = v.get<double>();
    if (!(s >= 0) || s > 366.0 * 24 * 3600) bad(where, what + " must be a duration such as \"5m\"");
    return milliseconds(static_cast<long long>(s * 1000));
  }
  milliseconds d{};
  if (!v.is_string() || !try_parse_duration(v.get<std::string>(), d)) bad(where, what + " must be a duration such as \"5m\"");
  return d;
}

}  // namespace

json policy::to_json() const {
  json lv = json::array();
  for (const auto& l : levels) lv.push_back({{"after_ms", l.after.count()}, {"notify", l.notify}});
  return {{"name", name}, {"levels", lv}, {"repeat", repeat}, {"repeat_after_ms", repeat_after.count()}};
}

policy policy::from_json(const json& j) {
  policy p;
  if (!j.is_object() || !j.contains("levels") || !j["levels"].is_array() || j["levels"].empty())
    throw error(error_kind::audit, "an incident's escalation policy snapshot is malformed");
  p.name = j.value("name", "");
  for (const auto& l : j["levels"]) {
    level x;
    x.after = milliseconds(l.value("after_ms", 0LL));
    if (l.contains("notify") && l["notify"].is_array())
      for (const auto& c : l["notify"])
        if (c.is_string()) x.notify.push_back(c.get<std::string>());
    p.levels.push_back(std::move(x));
  }
  p.repeat = std::clamp(j.value("repeat", 0), 0, k_max_repeat);
  p.repeat_after = milliseconds(j.value("repeat_after_ms", 0LL));
  return p;
}

policy policy::from_config(const std::string& name, const json& spec, const std::string& where) {
  std::string owner = where + ": escalation policy '" + name + "'";
  if (!spec.is_object()) bad(owner, "must be a table { levels = { { after = \"0m\", notify = { \"team\" } }, ... } }");
  const std::vector<std::string> known = {"levels", "repeat", "repeat_after"};
  for (const auto& [k, v] : spec.items())
    if (std::find(known.begin(), known.end(), k) == known.end())
      bad(owner, "unknown field '" + k + "'" + did_you_mean(k, known) + "; known fields: " + join(known, ", "));
  if (!spec.contains("levels") || !spec["levels"].is_array() || spec["levels"].empty())
    bad(owner, "needs levels = { { after = \"0m\", notify = { \"team\" } }, ... }");
  policy p;
  p.name = name;
  int i = 0;
  for (const auto& l : spec["levels"]) {
    std::string lo = "level " + std::to_string(++i);
    if (!l.is_object()) bad(owner, lo + " must be a table { after = \"5m\", notify = { \"oncall\" } }");
    for (const auto& [k, v] : l.items())
      if (k != "after" && k != "notify")
        bad(owner, lo + ": unknown field '" + k + "'" + did_you_mean(k, {"after", "notify"}) + "; known fields: after, notify");
    level x;
    if (l.contains("after")) x.after = duration_of(l["after"], owner, lo + ": after");
    if (!p.levels.empty() && x.after < p.levels.back().after)
      bad(owner, lo + ": after is earlier than the level before it (after counts from the incident's opening)");
    json n = l.value("notify", json());
    if (n.is_string()) n = json::array({n});
    if (!n.is_array() || n.empty()) bad(owner, lo + " needs notify = { \"channel\", ... }");
    for (const auto& c : n) {
      if (!c.is_string() || c.get<std::string>().empty()) bad(owner, lo + ": notify must list channel names");
      x.notify.push_back(c.get<std::string>());
    }
    p.levels.push_back(std::move(x));
  }
  if (spec.contains("repeat")) {
    const json& r = spec["repeat"];
    if (!r.is_number_integer() || r.get<long long>() < 0 || r.get<long long>() > k_max_repeat)
      bad(owner, "repeat must be a whole number from 0 to " + std::to_string(k_max_repeat));
    p.repeat = r.get<int>();
  }
  if (spec.contains("repeat_after")) p.repeat_after = duration_of(spec["repeat_after"], owner, "repeat_after");
  if (p.repeat > 0 && p.repeat_after <= p.levels.back().after)
    bad(owner, "repeat needs repeat_after, longer than the last level's after (the time from one pass's start to the next)");
  return p;
}

const policy* policy_set::find(const std::string& name) const {
  auto it = policies.find(name);
  return it == policies.end() ? nullptr : &it->second;
}

const policy* policy_set::for_runbook(const std::optional<std::string>& runbook_escalation) const {
  if (runbook_escalation) return find(*runbook_escalation);
  if (default_policy) return find(*default_policy);
  return nullptr;
}

void policy_set::require(const std::string& name, const std::string& where, const std::string& config_file) const {
  if (find(name)) return;
  std::vector<std::string> names;
  for (const auto& [n, p] : policies) names.push_back(n);
  std::string cfg = config_file.empty() ? "the config (no runbook.lua found)" : config_file;
  throw error(error_kind::bad_runbook, where + ": escalation policy '" + name + "' is not defined in " + cfg +
                                           did_you_mean(name, names) +
                                           (names.empty() ? std::string() : "; policies: " + join(names, ", ")));
}

}  // namespace rb::incident
