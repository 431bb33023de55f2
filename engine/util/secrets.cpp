// Secret values known to this process, and redaction of them.
#include "engine/util/secrets.hpp"

#include <algorithm>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

namespace rb::secrets {
namespace {
std::mutex g_mutex;
std::vector<std::string>& values() {
  static std::vector<std::string> v;
  return v;
}

std::string redact_locked(std::string text) {
  for (const auto& secret : values()) {
    std::size_t at = 0;
    while ((at = text.find(secret, at)) != std::string::npos) {
      text.replace(at, secret.size(), "***");
      at += 3;
    }
  }
  return text;
}

/// Where the earliest suffix of `text` begins that is a proper beginning of a secret (one the
/// next bytes could complete); text.size() when there is none.
std::size_t open_secret_at(const std::string& text) {
  std::size_t from = text.size();
  for (const auto& secret : values()) {
    std::size_t longest = std::min(secret.size() - 1, text.size());
    for (std::size_t len = longest; len > 0; --len) {
      std::size_t at = text.size() - len;
      if (at >= from) break;
      if (text.compare(at, len, secret, 0, len) == 0) {
        from = at;
        break;
      }
    }
  }
  return from;
}

/// Length of the longest prefix of `text` that is a proper end of a secret.
std::size_t secret_end_at_start(const std::string& text) {
  std::size_t best = 0;
  for (const auto& secret : values()) {
    for (std::size_t len = std::min(secret.size() - 1, text.size()); len > best; --len) {
      if (text.compare(0, len, secret, secret.size() - len, len) == 0) {
        best = len;
        break;
      }
    }
  }
  return best;
}
}  // namespace

void add(const std::string& value) {
  if (value.size() < 4) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  auto& v = values();
  if (std::find(v.begin(), v.end(), value) == v.end()) v.push_back(value);
  // Longest first, so a secret containing another is replaced whole.
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

std::string redact(std::string text) {
  std::lock_guard<std::mutex> lock(g_mutex);
  return redact_locked(std::move(text));
}

bool any() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return !values().empty();
}

void redact_with(nlohmann::json& value, const std::function<std::string(std::string)>& redact_text) {
  if (value.is_string()) {
    auto& s = value.get_ref<std::string&>();
    s = redact_text(std::move(s));
  } else if (value.is_array()) {
    for (auto& item : value) redact_with(item, redact_text);
  } else if (value.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto& [key, item] : value.items()) {
      redact_with(item, redact_text);
      std::string name = redact_text(key);
      if (name != key && out.contains(name)) {
        int n = 2;
        while (out.contains(name + " (" + std::to_string(n) + ")")) ++n;
        name += " (" + std::to_string(n) + ")";
      }
      out[name] = std::move(item);
    }
    value = std::move(out);
  }
}

void redact(nlohmann::json& value) {
  if (!any()) return;
  redact_with(value, [](std::string s) { return redact(std::move(s)); });
}

std::string redact_tail(const std::string& text, std::size_t n, bool truncated) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string out = redact_locked(text);
  if (out.size() > n) {
    out.erase(0, out.size() - n);
    truncated = true;
  }
  if (truncated) {
    std::size_t fragment = secret_end_at_start(out);
    if (fragment > 0) out.replace(0, fragment, "***");
  }
  return out;
}

void redacting_buf::drain(bool all) {
  if (m_held.empty()) return;
  std::string text;
  std::size_t keep_from = 0;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    text = redact_locked(std::move(m_held));
    keep_from = all ? text.size() : open_secret_at(text);
  }
  m_held = text.substr(keep_from);
  m_sink->sputn(text.data(), static_cast<std::streamsize>(keep_from));
}

void redacting_buf::close() {
  drain(true);
  m_sink->pubsync();
}

redacting_buf::int_type redacting_buf::overflow(int_type ch) {
  if (traits_type::eq_int_type(ch, traits_type::eof())) return traits_type::not_eof(ch);
  char c = traits_type::to_char_type(ch);
  xsputn(&c, 1);
  return ch;
}

std::streamsize redacting_buf::xsputn(const char* s, std::streamsize n) {
  m_held.append(s, static_cast<std::size_t>(n));
  drain(false);
  return n;
}

int redacting_buf::sync() {
  drain(false);
  return m_sink->pubsync();
}

}  // namespace rb::secrets
