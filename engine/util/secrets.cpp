// Secret values known to this process, and redaction of them.
#include "engine/util/secrets.hpp"

#include <algorithm>
#include <mutex>
#include <vector>

namespace rb::secrets {
namespace {
std::mutex g_mutex;
std::vector<std::string>& values() {
  static std::vector<std::string> v;
  return v;
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
  for (const auto& secret : values()) {
    std::size_t at = 0;
    while ((at = text.find(secret, at)) != std::string::npos) {
      text.replace(at, secret.size(), "***");
      at += 3;
    }
  }
  return text;
}

bool any() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return !values().empty();
}

}  // namespace rb::secrets
