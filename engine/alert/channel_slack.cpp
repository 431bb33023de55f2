// The `slack` channel: an incoming-webhook message, plain `text` fallback plus blocks within Slack's limits.
#include "engine/alert/channel.hpp"

namespace rb::alert {
namespace {

// Slack's documented limits: section text 3,000 characters, header 150, field 2,000, top-level
// text 40,000 (we stay far below). Cut on bytes, which never exceeds the character count.
constexpr std::size_t k_section = 3000, k_header = 150, k_field = 2000, k_text = 3000;

/// Runbook data shown as mrkdwn: & < > escaped, so "<!channel>" in a summary pings nobody.
std::string esc(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

const char* badge(const std::string& severity) {
  if (severity == severity::critical) return "\xF0\x9F\x94\xB4";  // red circle
  if (severity == severity::error) return "\xF0\x9F\x9F\xA0";     // orange circle
  if (severity == severity::warning) return "\xF0\x9F\x9F\xA1";   // yellow circle
  return "\xF0\x9F\x94\xB5";                                      // blue circle
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

json mrkdwn(const std::string& text) { return {{"type", "mrkdwn"}, {"text", text}}; }

}  // namespace

json slack_payload(const channel_config& cfg, const notification& n) {
  std::string what = n.action == "trigger" ? "" : n.action == "acknowledge" ? " (acknowledged)" : " (resolved)";
  std::string link = run_link(cfg.run_url, n);
  std::string run = n.run_id.empty() ? "-" : link.empty() ? "`" + esc(n.run_id) + "`" : "<" + link + "|" + esc(n.run_id) + ">";
  std::string text = "[" + upper(n.severity) + "]" + what + " " + esc(n.summary);
  if (!n.runbook.empty()) text += " — runbook " + esc(n.runbook);
  if (!n.target.empty()) text += " on " + esc(n.target);
  if (!n.run_id.empty()) text += " (run " + esc(n.run_id) + ")";
  json blocks = json::array();
  blocks.push_back({{"type", "header"},
                    {"text", {{"type", "plain_text"}, {"emoji", true},
                              {"text", cut_utf8(std::string(badge(n.severity)) + " " + upper(n.severity) + what + ": " + n.summary, k_header)}}}});
  json fields = json::array({mrkdwn("*Severity*\n" + n.severity),
                             mrkdwn(cut_utf8("*Runbook*\n" + (n.runbook.empty() ? "-" : esc(n.runbook)), k_field)),
                             mrkdwn(cut_utf8("*Target*\n" + (n.target.empty() ? "-" : esc(n.target)), k_field)),
                             mrkdwn(cut_utf8("*Run*\n" + run, k_field))});
  if (!n.incident.empty())
    fields.push_back(mrkdwn(cut_utf8("*Incident*\n" + esc(n.incident) + (n.level > 0 ? " (level " + std::to_string(n.level) + ")" : ""), k_field)));
  blocks.push_back({{"type", "section"}, {"fields", fields}});
  blocks.push_back({{"type", "section"}, {"text", mrkdwn(cut_utf8("*Summary*\n" + esc(n.summary), k_section))}});
  if (n.details.is_object() && !n.details.empty()) {
    std::string lines = "*Details*";
    for (const auto& [k, v] : n.details.items()) lines += "\n*" + esc(k) + "*: " + esc(value_text(v));
    blocks.push_back({{"type", "section"}, {"text", mrkdwn(cut_utf8(lines, k_section))}});
  } else if (!n.details.is_null() && !n.details.is_object()) {
    blocks.push_back({{"type", "section"}, {"text", mrkdwn(cut_utf8("*Details*\n" + esc(value_text(n.details)), k_section))}});
  }
  blocks.push_back({{"type", "context"}, {"elements", json::array({mrkdwn(cut_utf8("sent by runbook · dedup `" + esc(dedup_key(n)) + "`", k_field))})}});
  return {{"text", cut_utf8(text, k_text)}, {"blocks", blocks}};
}

namespace {

class slack_channel final : public channel {
 public:
  using channel::channel;
  attempt_result attempt(const notification& n, const std::string&, interrupt& stop) override {
    return post_json(m_cfg, slack_payload(m_cfg, n), stop, /*only_200=*/true);
  }
};

}  // namespace

std::unique_ptr<channel> make_slack_channel(const channel_config& cfg) { return std::make_unique<slack_channel>(cfg); }

}  // namespace rb::alert
