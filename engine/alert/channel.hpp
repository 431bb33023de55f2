// Alert channels: their configuration, the one interface every channel type implements, and the factory.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/alert/notification.hpp"

namespace rb::alert {

using milliseconds = std::chrono::milliseconds;

/// The kinds of channel a config may name.
enum class channel_type { log, file, webhook, slack, pagerduty, email };

/// "log", "file", ... ; nullopt for an unknown name.
std::optional<channel_type> channel_type_from(const std::string& name);
const char* to_string(channel_type t);

/// 0 for critical ... 3 for info; -1 for a name that is not a severity.
int severity_rank(const std::string& severity);

/// One entry of the config's `channels` table. Secrets among the fields (webhook URLs, routing
/// keys, passwords) are registered with rb::secrets when the config is read.
struct channel_config {
  std::string name;
  channel_type type = channel_type::log;
  std::string url;                        ///< webhook, slack (webhook), pagerduty (default Events API v2), email (smtp)
  milliseconds timeout{10'000};           ///< one attempt, connect included
  milliseconds connect_timeout{5'000};
  std::string min_severity = severity::info;  ///< less severe notifications are not sent here
  int attempts = 5;                       ///< attempts per delivery (network errors, 5xx, 429 retried)
  std::string run_url;                    ///< "https://ci.example.com/runs/{run}": a link back to the run
  // file
  std::string path;
  // webhook
  std::vector<std::pair<std::string, std::string>> headers;
  // pagerduty
  std::string routing_key;
  // email
  bool starttls = false;
  std::string from, user, password;
  std::vector<std::string> to;
};

/// What one attempt to deliver came to.
struct attempt_result {
  enum class verdict { delivered, retry, failed };
  verdict outcome = verdict::failed;
  long status = 0;                        ///< HTTP status or SMTP reply code; 0 when none came
  std::string body;                       ///< what the receiver answered (bounded)
  std::string reason;                     ///< why it was not delivered, in words
  std::optional<milliseconds> retry_after;  ///< the receiver asked to wait this long (429 Retry-After)
};

class interrupt;

/// One configured destination. attempt() makes one try and never throws for a delivery problem.
class channel {
 public:
  explicit channel(channel_config cfg) : m_cfg(std::move(cfg)) {}
  virtual ~channel() = default;
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;
  const channel_config& config() const { return m_cfg; }
  /// One attempt to deliver `n` (delivery id `delivery`); `stop` abandons a transfer under way.
  virtual attempt_result attempt(const notification& n, const std::string& delivery, interrupt& stop) = 0;

 protected:
  channel_config m_cfg;
};

/// The channel for a config entry.
std::unique_ptr<channel> make_channel(const channel_config& cfg);

/// Why a config entry cannot work ("needs webhook = ...", "url: scheme must be http or https"),
/// or nullopt when it can.
std::optional<std::string> check_channel(const channel_config& cfg);

// ---- payloads (what each channel sends; also read by the tests) ---------------------------

/// The dedup key a notification goes out with: its own, else one derived from runbook, target
/// and summary; at most 255 bytes (PagerDuty's limit).
std::string dedup_key(const notification& n);
/// `text` cut to at most `max_bytes` bytes on a UTF-8 boundary, ending in " (truncated)" when cut.
std::string cut_utf8(const std::string& text, std::size_t max_bytes);
/// "{run}" in `templ` replaced by the run id; empty when there is no template.
std::string run_link(const std::string& templ, const notification& n);

json pagerduty_payload(const channel_config& cfg, const notification& n);
json slack_payload(const channel_config& cfg, const notification& n);
json webhook_payload(const channel_config& cfg, const notification& n, const std::string& delivery);
json file_record(const channel_config& cfg, const notification& n, const std::string& delivery);
/// The whole RFC 5322 message (CRLF line ends), headers and plain-text body.
std::string email_message(const channel_config& cfg, const notification& n, const std::string& delivery);
/// One line for the run's output (log channel).
std::string log_line(const notification& n);

/// An HTTP answer as an attempt's verdict: 2xx delivered (only 200 with `only_200`, Slack's
/// rule); 429, 408, 5xx and no answer at all retried; any other status failed for good.
attempt_result http_verdict(long status, std::string body, std::optional<milliseconds> retry_after,
                            const std::string& network_error, bool only_200 = false);

/// POSTs `body` as JSON to the channel's url with its headers and timeouts; the verdict as above.
attempt_result post_json(const channel_config& cfg, const json& body, interrupt& stop, bool only_200 = false);

// ---- one factory per type (channel_<type>.cpp) ---------------------------------------------
std::unique_ptr<channel> make_log_channel(const channel_config& cfg);
std::unique_ptr<channel> make_file_channel(const channel_config& cfg);
std::unique_ptr<channel> make_webhook_channel(const channel_config& cfg);
std::unique_ptr<channel> make_slack_channel(const channel_config& cfg);
std::unique_ptr<channel> make_pagerduty_channel(const channel_config& cfg);
std::unique_ptr<channel> make_email_channel(const channel_config& cfg);

}  // namespace rb::alert
