// The `webhook` channel: a JSON POST in Alertmanager's webhook shape (version 4), plus a `runbook` object.
#include "engine/alert/channel.hpp"

namespace rb::alert {

// Alertmanager's shape lets receivers written for it (and their parsers) take runbook's alerts
// unchanged; the full notification rides along under "runbook".
json webhook_payload(const channel_config& cfg, const notification& n, const std::string& delivery) {
  std::string key = dedup_key(n);
  std::string status = n.action == "resolve" ? "resolved" : "firing";
  json labels = {{"alertname", n.incident.empty() ? "runbook" : "runbook_incident"},
                 {"runbook", n.runbook}, {"target", n.target}, {"severity", n.severity}};
  json annotations = {{"summary", n.summary}};
  if (n.details.is_object() && !n.details.empty()) annotations["description"] = n.details.dump();
  std::string link = run_link(cfg.run_url, n);
  json alert = {{"status", status},
                {"labels", labels},
                {"annotations", annotations},
                {"startsAt", n.timestamp},
                {"endsAt", n.action == "resolve" ? n.timestamp : "0001-01-01T00:00:00Z"},
                {"generatorURL", link},
                {"fingerprint", key}};
  json rb = {{"delivery", delivery}, {"channel", cfg.name},  {"action", n.action},   {"severity", n.severity},
             {"summary", n.summary}, {"details", n.details}, {"dedup", key},         {"runbook", n.runbook},
             {"target", n.target},   {"run", n.run_id},      {"timestamp", n.timestamp}};
  if (!n.incident.empty()) {
    rb["incident"] = n.incident;
    rb["level"] = n.level;
  }
  if (!link.empty()) rb["link"] = link;
  return {{"version", "4"},
          {"groupKey", key},
          {"truncatedAlerts", 0},
          {"status", status},
          {"receiver", cfg.name},
          {"groupLabels", {{"runbook", n.runbook}, {"target", n.target}}},
          {"commonLabels", labels},
          {"commonAnnotations", annotations},
          {"externalURL", link},
          {"alerts", json::array({alert})},
          {"runbook", rb}};
}

namespace {

class webhook_channel final : public channel {
 public:
  using channel::channel;
  attempt_result attempt(const notification& n, const std::string& delivery, interrupt& stop) override {
    return post_json(m_cfg, webhook_payload(m_cfg, n, delivery), stop);
  }
};

}  // namespace

std::unique_ptr<channel> make_webhook_channel(const channel_config& cfg) { return std::make_unique<webhook_channel>(cfg); }

}  // namespace rb::alert
