// Alert channels: types, severities, config checks, the factory and the helpers every format shares.
#include "engine/alert/channel.hpp"

#include "engine/alert/http.hpp"
#include "engine/util/hash.hpp"
#include "engine/util/json_text.hpp"
#include "engine/util/text.hpp"

namespace rb::alert {

std::optional<channel_type> channel_type_from(const std::string& name) {
  if (name == "log") return channel_type::log;
  if (name == "file") return channel_type::file;
  if (name == "webhook") return channel_type::webhook;
  if (name == "slack") return channel_type::slack;
  if (name == "pagerduty") return channel_type::pagerduty;
  if (name == "email") return channel_type::email;
  return std::nullopt;
}

const char* to_string(channel_type t) {
  switch (t) {
    case channel_type::log: return "log";
    case channel_type::file: return "file";
    case channel_type::webhook: return "webhook";
    case channel_type::slack: return "slack";
    case channel_type::pagerduty: return "pagerduty";
    case channel_type::email: return "email";
  }
  return "?";
}

int severity_rank(const std::string& s) {
  if (s == severity::critical) return 0;
  if (s == severity::error) return 1;
  if (s == severity::warning) return 2;
  if (s == severity::info) return 3;
  return -1;
}

std::unique_ptr<channel> make_channel(const channel_config& cfg) {
  switch (cfg.type) {
    case channel_type::log: return make_log_channel(cfg);
    case channel_type::file: return make_file_channel(cfg);
    case channel_type::webhook: return make_webhook_channel(cfg);
    case channel_type::slack: return make_slack_channel(cfg);
    case channel_type::pagerduty: return make_pagerduty_channel(cfg);
    case channel_type::email: return make_email_channel(cfg);
  }
  return nullptr;
}

std::optional<std::string> check_channel(const channel_config& cfg) {
  const std::vector<std::string> http{"http", "https"};
  switch (cfg.type) {
    case channel_type::log: return std::nullopt;
    case channel_type::file:
      if (cfg.path.empty()) return "needs path = \"/var/log/runbook/alerts.jsonl\"";
      return std::nullopt;
    case channel_type::webhook:
      if (cfg.url.empty()) return "needs url = \"https://...\"";
      break;
    case channel_type::slack:
      if (cfg.url.empty()) return "needs webhook = secret \"SLACK_WEBHOOK_URL\"";
      break;
    case channel_type::pagerduty:
      if (cfg.routing_key.empty()) return "needs routing_key = secret \"PD_ROUTING_KEY\"";
      break;
    case channel_type::email:
      if (cfg.url.empty()) return "needs smtp = \"smtp://mail.example.com:587\"";
      if (cfg.from.empty()) return "needs from = \"runbook@example.com\"";
      if (cfg.to.empty()) return "needs to = { \"dba@example.com\" }";
      if (auto why = check_url(cfg.url, {"smtp", "smtps"})) return "smtp: " + *why;
      return std::nullopt;
  }
  if (auto why = check_url(cfg.url, http)) return std::string(cfg.type == channel_type::slack ? "webhook" : "url") + ": " + *why;
  return std::nullopt;
}

std::string cut_utf8(const std::string& text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  static const std::string mark = " (truncated)";
  if (max_bytes <= mark.size()) return mark.substr(0, max_bytes);
  std::size_t end = max_bytes - mark.size();
  // Back off continuation bytes (10xxxxxx) so the cut never splits a character.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end) + mark;
}

std::string dedup_key(const notification& n) {
  std::string key = n.dedup;
  if (key.empty()) key = "runbook:" + n.runbook + ":" + n.target + ":" + sha256_hex(n.summary).substr(0, 16);
  if (key.size() <= 255) return key;
  // Keep what a person reads, and make the cut key still unique.
  std::string head = key.substr(0, 190);
  while (!head.empty() && (static_cast<unsigned char>(head.back()) & 0x80)) head.pop_back();
  return head + ":" + sha256_hex(key);
}

std::string run_link(const std::string& templ, const notification& n) {
  if (templ.empty() || n.run_id.empty()) return "";
  std::string out = templ;
  for (auto pos = out.find("{run}"); pos != std::string::npos; pos = out.find("{run}", pos + n.run_id.size()))
    out.replace(pos, 5, n.run_id);
  return out;
}

attempt_result http_verdict(long status, std::string body, std::optional<milliseconds> retry_after,
                            const std::string& network_error, bool only_200) {
  attempt_result r;
  r.status = status;
  r.body = std::move(body);
  r.retry_after = retry_after;
  std::string said = r.body.empty() ? "" : ": " + bounded_text(valid_utf8(r.body), 200);
  if (!network_error.empty()) {
    r.outcome = attempt_result::verdict::retry;
    r.reason = network_error;
  } else if (status >= 200 && status < 300 && (!only_200 || status == 200)) {
    r.outcome = attempt_result::verdict::delivered;
  } else if (status == 429 || status == 408 || status >= 500) {
    r.outcome = attempt_result::verdict::retry;
    r.reason = "HTTP " + std::to_string(status) + said;
  } else {
    r.outcome = attempt_result::verdict::failed;
    r.reason = "HTTP " + std::to_string(status) + said;
  }
  return r;
}

attempt_result post_json(const channel_config& cfg, const json& body, interrupt& stop, bool only_200) {
  http_request req;
  req.url = cfg.url;
  for (const auto& [k, v] : cfg.headers) req.headers.push_back(k + ": " + v);
  req.body = json_text(body);
  req.timeout = cfg.timeout;
  req.connect_timeout = std::min(cfg.connect_timeout, cfg.timeout);
  http_response res = http_post(req, stop);
  return http_verdict(res.status, std::move(res.body), res.retry_after, res.error, only_200);
}

}  // namespace rb::alert
