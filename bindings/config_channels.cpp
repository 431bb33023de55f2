// The alert part of the configuration file (see config_channels.hpp):
//   channels = { team = { type = "slack", webhook = secret "SLACK_WEBHOOK_URL", min_severity = "error" } },
//   default_channels = { "team" }, alert_wait = "10s",
#include "bindings/config_channels.hpp"

#include <fstream>
#include <regex>
#include <sstream>

#include "engine/error.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/secrets.hpp"
#include "engine/util/text.hpp"

namespace rb::lua {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

/// The line of `name = {` inside the file's `channels = {` table, 0 when not found. Lua's
/// table constructors keep no line numbers, so the source text is read.
int channel_line(const fs::path& file, const std::string& name) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  std::smatch m;
  static const std::regex channels_key(R"((^|[^\w.])channels\s*=\s*\{)");
  if (!std::regex_search(text, m, channels_key)) return 0;
  std::size_t from = static_cast<std::size_t>(m.position(0) + m.length(0));
  std::string quoted;
  for (char c : name) quoted += std::isalnum(static_cast<unsigned char>(c)) || c == '_' ? std::string(1, c) : "\\" + std::string(1, c);
  std::regex key("(^|[^\\w.])(" + quoted + "|\\[\\s*[\"']" + quoted + "[\"']\\s*\\])\\s*=");
  std::string rest = text.substr(from);
  if (!std::regex_search(rest, m, key)) return 0;
  std::size_t at = from + static_cast<std::size_t>(m.position(2));
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
}

struct channel_reader {
  const fs::path& file;
  const std::string& name;
  const json& obj;

  [[noreturn]] void bad(const std::string& what) const {
    int line = channel_line(file, name);
    throw error(error_kind::bad_runbook, file.string() + (line ? ":" + std::to_string(line) : "") + ": channel '" +
                                             name + "': " + what);
  }
  std::string str(const char* key, bool secret = false) const {
    if (!obj.contains(key)) return "";
    if (!obj[key].is_string()) bad(std::string(key) + " must be a string");
    std::string v = obj[key].get<std::string>();
    if (secret) secrets::add(v);
    return v;
  }
  std::optional<std::chrono::milliseconds> duration(const char* key) const {
    if (!obj.contains(key)) return std::nullopt;
    std::chrono::milliseconds d{};
    const json& v = obj[key];
    if (v.is_number() && v.get<double>() >= 0 && v.get<double>() < 86400) return std::chrono::milliseconds(static_cast<long long>(v.get<double>() * 1000));
    if (!v.is_string() || !try_parse_duration(v.get<std::string>(), d) || d.count() <= 0)
      bad(std::string(key) + " must be a duration such as \"10s\"");
    return d;
  }
};

alert::channel_config read_channel(const fs::path& file, const std::string& name, const json& obj) {
  channel_reader r{file, name, obj};
  if (!obj.is_object()) r.bad("must be a table { type = \"slack\", ... }");
  alert::channel_config c;
  c.name = name;
  const std::vector<std::string> types{"log", "file", "webhook", "slack", "pagerduty", "email"};
  if (!obj.contains("type")) r.bad("needs type = one of " + join(types, ", "));
  std::string type = r.str("type");
  auto t = alert::channel_type_from(type);
  if (!t) r.bad("unknown type '" + type + "'" + did_you_mean(type, types) + "; types: " + join(types, ", "));
  c.type = *t;
  std::vector<std::string> allowed{"type", "timeout", "connect_timeout", "min_severity", "attempts", "run_url"};
  auto allow = [&](std::initializer_list<const char*> more) { allowed.insert(allowed.end(), more.begin(), more.end()); };
  switch (c.type) {
    case alert::channel_type::log: break;
    case alert::channel_type::file: allow({"path"}); break;
    case alert::channel_type::webhook: allow({"url", "headers"}); break;
    case alert::channel_type::slack: allow({"webhook", "url"}); break;
    case alert::channel_type::pagerduty: allow({"routing_key", "url"}); break;
    case alert::channel_type::email: allow({"smtp", "url", "starttls", "from", "to", "user", "password"}); break;
  }
  for (const auto& [k, v] : obj.items()) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end())
      r.bad("unknown field '" + k + "' for a " + type + " channel" + did_you_mean(k, allowed) + "; known fields: " + join(allowed, ", "));
  }
  if (auto d = r.duration("timeout")) c.timeout = *d;
  if (auto d = r.duration("connect_timeout")) c.connect_timeout = *d;
  if (obj.contains("min_severity")) {
    c.min_severity = r.str("min_severity");
    if (alert::severity_rank(c.min_severity) < 0)
      r.bad("min_severity '" + c.min_severity + "' is not one of critical, error, warning, info");
  }
  if (obj.contains("attempts")) {
    if (!obj["attempts"].is_number_integer() || obj["attempts"].get<long long>() < 1 || obj["attempts"].get<long long>() > 20)
      r.bad("attempts must be a whole number from 1 to 20");
    c.attempts = static_cast<int>(obj["attempts"].get<long long>());
  }
  c.run_url = r.str("run_url");
  c.path = r.str("path");
  // URLs that are credentials (Slack's webhook, a webhook's URL with a token in it) and keys
  // are secrets whether or not they came through secret "NAME".
  c.url = r.str("url", c.type == alert::channel_type::webhook || c.type == alert::channel_type::slack);
  if (c.type == alert::channel_type::slack && obj.contains("webhook")) {
    if (obj.contains("url")) r.bad("give webhook or url, not both");
    c.url = r.str("webhook", true);
  }
  if (c.type == alert::channel_type::pagerduty) {
    c.routing_key = r.str("routing_key", true);
    if (c.url.empty()) c.url = "https://events.pagerduty.com/v2/enqueue";
  }
  if (c.type == alert::channel_type::email) {
    if (obj.contains("smtp")) {
      if (obj.contains("url")) r.bad("give smtp or url, not both");
      c.url = r.str("smtp");
    }
    if (obj.contains("starttls")) {
      if (!obj["starttls"].is_boolean()) r.bad("starttls must be true or false");
      c.starttls = obj["starttls"].get<bool>();
    }
    c.from = r.str("from");
    c.user = r.str("user");
    c.password = r.str("password", true);
    if (obj.contains("to")) {
      const json& to = obj["to"];
      if (to.is_string()) c.to.push_back(to.get<std::string>());
      else if (to.is_array()) {
        for (const auto& a : to) {
          if (!a.is_string()) r.bad("to must be a list of addresses");
          c.to.push_back(a.get<std::string>());
        }
      } else r.bad("to must be an address or a list of addresses");
    }
    for (const auto& a : c.to)
      if (a.find('@') == std::string::npos || a.find_first_of("\r\n") != std::string::npos) r.bad("to: '" + a + "' is not an address");
    if (!c.from.empty() && (c.from.find('@') == std::string::npos || c.from.find_first_of("\r\n") != std::string::npos))
      r.bad("from: '" + c.from + "' is not an address");
  }
  if (obj.contains("headers")) {
    const json& h = obj["headers"];
    if (!(h.is_object() || (h.is_array() && h.empty()))) r.bad("headers must be a table of Name = \"value\"");
    for (const auto& [k, v] : h.items()) {
      if (!v.is_string()) r.bad("headers." + k + " must be a string");
      std::string value = v.get<std::string>();
      if (k.empty() || k.find_first_of(":\r\n ") != std::string::npos || value.find_first_of("\r\n") != std::string::npos)
        r.bad("headers: '" + k + "' is not a valid header");
      std::string lower = k;
      for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (lower != "content-type" && lower != "accept" && lower != "user-agent") secrets::add(value);
      c.headers.emplace_back(k, value);
    }
  }
  if (auto why = alert::check_channel(c)) r.bad(*why);
  return c;
}

}  // namespace

void load_channels(const fs::path& file, const json& root, run::config& cfg) {
  auto bad = [&](const std::string& what) { throw error(error_kind::bad_runbook, file.string() + ": " + what); };
  if (root.contains("channels")) {
    const json& ch = root["channels"];
    if (!(ch.is_object() || (ch.is_array() && ch.empty())))
      bad("channels must be a table of name = { type = \"...\", ... }");
    for (const auto& [name, obj] : ch.items()) cfg.channels[name] = read_channel(file, name, obj);
  }
  if (root.contains("default_channels")) {
    const json& d = root["default_channels"];
    std::vector<std::string> names;
    if (d.is_string()) names.push_back(d.get<std::string>());
    else if (d.is_array()) {
      for (const auto& n : d) {
        if (!n.is_string()) bad("default_channels must be a list of channel names");
        names.push_back(n.get<std::string>());
      }
    } else bad("default_channels must be a list of channel names");
    std::vector<std::string> known;
    for (const auto& [n, c] : cfg.channels) known.push_back(n);
    for (const auto& n : names)
      if (!cfg.channels.count(n)) bad("default_channels: no channel '" + n + "'" + did_you_mean(n, known));
    cfg.default_channels = names;
  }
  if (root.contains("alert_wait")) {
    const json& v = root["alert_wait"];
    std::chrono::milliseconds d{};
    if (v.is_number() && v.get<double>() >= 0 && v.get<double>() <= 3600) d = std::chrono::milliseconds(static_cast<long long>(v.get<double>() * 1000));
    else if (!v.is_string() || !try_parse_duration(v.get<std::string>(), d) || d > std::chrono::hours(1))
      bad("alert_wait must be a duration such as \"10s\" (at most 1h)");
    cfg.alert_wait = d;
  }
}

}  // namespace rb::lua
