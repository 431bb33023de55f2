// The `pagerduty` channel: PagerDuty Events API v2 (trigger / acknowledge / resolve by dedup_key).
#include "engine/alert/channel.hpp"

namespace rb::alert {

json pagerduty_payload(const channel_config& cfg, const notification& n) {
  json j = {{"routing_key", cfg.routing_key}, {"event_action", n.action}, {"dedup_key", dedup_key(n)}};
  // Acknowledge and resolve carry only the key: PagerDuty matches them to the trigger by it.
  if (n.action != "trigger") return j;
  json custom = n.details.is_object() ? n.details : json{{"details", n.details}};
  custom["runbook"] = n.runbook;
  custom["target"] = n.target;
  custom["run"] = n.run_id;
  if (!n.incident.empty()) {
    custom["incident"] = n.incident;
    custom["level"] = n.level;
  }
  std::string cls = "runbook";
  if (n.details.is_object() && n.details.contains("class") && n.details["class"].is_string())
    cls = n.details["class"].get<std::string>();
  std::string source = !n.target.empty() ? n.target : !n.runbook.empty() ? n.runbook : "runbook";
  json payload = {{"summary", cut_utf8(n.summary.empty() ? "(no summary)" : n.summary, 1024)},
                  {"source", source},
                  {"severity", n.severity},
                  {"timestamp", n.timestamp},
                  {"component", n.runbook},
                  {"group", n.target},
                  {"class", cls},
                  {"custom_details", custom}};
  j["payload"] = payload;
  j["client"] = "runbook";
  if (auto link = run_link(cfg.run_url, n); !link.empty()) {
    j["client_url"] = link;
    j["links"] = json::array({{{"href", link}, {"text", "runbook run " + n.run_id}}});
  }
  return j;
}

namespace {

class pagerduty_channel final : public channel {
 public:
  using channel::channel;
  attempt_result attempt(const notification& n, const std::string&, interrupt& stop) override {
    return post_json(m_cfg, pagerduty_payload(m_cfg, n), stop);
  }
};

}  // namespace

std::unique_ptr<channel> make_pagerduty_channel(const channel_config& cfg) {
  return std::make_unique<pagerduty_channel>(cfg);
}

}  // namespace rb::alert
