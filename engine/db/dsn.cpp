// Connection strings (keyword/value and postgresql:// URIs), read by libpq's own parser.
#include "engine/db/dsn.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "engine/error.hpp"

namespace rb::db {
namespace {

bool is_secret_key(std::string_view key) { return key == "password" || key == "sslpassword"; }

/// libpq's keywords (host, dbname, ...): the only quoted words of its complaints shown as they are.
bool is_keyword(std::string_view word) {
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> defaults(PQconndefaults(), PQconninfoFree);
  for (PQconninfoOption* o = defaults.get(); o && o->keyword; ++o)
    if (word == o->keyword) return true;
  return false;
}

/// PQconninfoParse's complaint with every quoted word that is not a keyword replaced by "***"
/// ("missing "=" after "2secret"" came from "password=hunter 2secret").
std::string safe_complaint(std::string_view msg) {
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.remove_suffix(1);
  std::string out;
  std::size_t at = 0;
  while (at < msg.size()) {
    std::size_t open = msg.find('"', at);
    std::size_t close = open == std::string_view::npos ? open : msg.find('"', open + 1);
    if (close == std::string_view::npos) break;
    std::string_view word = msg.substr(open + 1, close - open - 1);
    out += msg.substr(at, open + 1 - at);
    out += word == "=" || is_keyword(word) ? std::string(word) : "***";
    out += '"';
    at = close + 1;
  }
  out += msg.substr(std::min(at, msg.size()));
  return out;
}

std::string quoted_value(std::string_view v) {
  bool plain = !v.empty() && std::none_of(v.begin(), v.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '\'' || c == '\\';
  });
  if (plain) return std::string(v);
  std::string out = "'";
  for (char c : v) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string percent_encode(std::string_view s) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 0xf];
    }
  }
  return out;
}

/// A dbname that is itself a connection string (PQconnectdb expands it).
bool holds_dsn(std::string_view dbname) {
  return dbname.find('=') != std::string_view::npos || dbname.substr(0, 13) == "postgresql://" ||
         dbname.substr(0, 11) == "postgres://";
}

std::optional<std::vector<dsn_setting>> try_parse(std::string_view dsn, std::string* complaint) {
  std::string text(dsn);
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(text.c_str(), &err);
  if (!opts) {
    if (complaint) *complaint = err ? safe_complaint(err) : "out of memory";
    PQfreemem(err);
    return std::nullopt;
  }
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> owned(opts, PQconninfoFree);
  std::vector<dsn_setting> out;
  for (PQconninfoOption* o = opts; o->keyword; ++o)
    if (o->val) out.push_back({o->keyword, o->val, o->envvar ? o->envvar : ""});
  return out;
}

bool has_secret(const std::vector<dsn_setting>& settings) {
  for (const auto& s : settings) {
    if (is_secret_key(s.keyword) && !s.value.empty()) return true;
    if (s.keyword == "dbname" && holds_dsn(s.value) && dsn_password(s.value)) return true;
  }
  return false;
}

}  // namespace

std::vector<dsn_setting> parse_dsn(std::string_view dsn) {
  std::string complaint;
  auto settings = try_parse(dsn, &complaint);
  if (!settings) throw error(error_kind::usage, "unable to read the connection string: " + complaint);
  return *settings;
}

std::optional<std::string> dsn_password(std::string_view dsn) {
  auto settings = try_parse(dsn, nullptr);
  if (!settings) return std::nullopt;
  std::optional<std::string> inner;
  for (const auto& s : *settings) {
    if (s.keyword == "password" && !s.value.empty()) return s.value;
    if (s.keyword == "dbname" && holds_dsn(s.value)) inner = dsn_password(s.value);
  }
  return inner;
}

std::vector<std::string> dsn_secrets(std::string_view dsn) {
  std::vector<std::string> out;
  auto settings = try_parse(dsn, nullptr);
  if (!settings) return out;
  for (const auto& s : *settings) {
    std::vector<std::string> forms;
    if (is_secret_key(s.keyword) && !s.value.empty()) forms = {s.value, percent_encode(s.value)};
    if (s.keyword == "dbname" && holds_dsn(s.value)) forms = dsn_secrets(s.value);
    for (auto& f : forms)
      if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

std::string redact_dsn(std::string_view dsn) {
  auto settings = try_parse(dsn, nullptr);
  if (!settings) return "***";
  if (!has_secret(*settings)) return std::string(dsn);
  std::string out;
  for (const auto& s : *settings) {
    std::string value = is_secret_key(s.keyword)                         ? "***"
                        : s.keyword == "dbname" && holds_dsn(s.value) ? quoted_value(redact_dsn(s.value))
                                                                        : quoted_value(s.value);
    out += (out.empty() ? "" : " ") + s.keyword + "=" + value;
  }
  return out;
}

std::string dsn_without_password(std::string_view dsn) {
  std::string out;
  for (const auto& s : parse_dsn(dsn)) {
    if (s.keyword == "password") continue;
    out += (out.empty() ? "" : " ") + s.keyword + "=" + quoted_value(s.value);
  }
  return out;
}

std::string dsn_with(std::string_view dsn, std::string_view keyword, std::string_view value) {
  std::string out(dsn);
  if (dsn.substr(0, 13) == "postgresql://" || dsn.substr(0, 11) == "postgres://")
    return out + (dsn.find('?') == std::string_view::npos ? "?" : "&") + std::string(keyword) + "=" + percent_encode(value);
  return out + (dsn.empty() ? "" : " ") + std::string(keyword) + "=" + quoted_value(value);
}

std::map<std::string, std::string> libpq_env(std::string_view dsn) {
  std::map<std::string, std::string> env;
  for (const auto& s : parse_dsn(dsn))
    if (!s.value.empty() && !s.envvar.empty()) env[s.envvar] = s.value;
  return env;
}

bool redact_dsn_in_place(char* text) {
  std::size_t len = std::strlen(text);
  std::string_view dsn(text, len);
  auto settings = try_parse(dsn, nullptr);
  if (settings && !has_secret(*settings)) return false;
  std::string redacted = redact_dsn(dsn);
  std::size_t n = std::min(len, redacted.size());
  std::memcpy(text, redacted.data(), n);
  std::memset(text + n, 0, len - n);
  return true;
}

}  // namespace rb::db
