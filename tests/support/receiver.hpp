// Real HTTP and SMTP receivers on 127.0.0.1 for the alert tests (python3 scripts beside this file).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rb::testing {

/// Starts tests/support/http_receiver.py or smtp_receiver.py on a free port, recording every
/// request (HTTP: method, path, headers, body, t; SMTP: from, to, data) as JSON lines in
/// `dir`. The process is killed when the receiver goes out of scope.
class receiver {
 public:
  enum class kind { http, smtp };
  /// `args`: extra arguments, e.g. {"--script", "500,500,202"} or {"--reject", "550"}.
  receiver(kind k, const std::filesystem::path& dir, std::vector<std::string> args = {});
  ~receiver();
  receiver(const receiver&) = delete;
  receiver& operator=(const receiver&) = delete;

  int port() const { return m_port; }
  /// "http://127.0.0.1:PORT/path" or "smtp://127.0.0.1:PORT".
  std::string url(const std::string& path = "/hook") const;
  /// Every request recorded so far.
  std::vector<nlohmann::json> requests() const;
  /// Waits until at least `n` requests were recorded; false at the limit.
  bool wait_for(std::size_t n, std::chrono::milliseconds limit = std::chrono::seconds(20)) const;

 private:
  kind m_kind;
  pid_t m_pid = -1;
  int m_port = 0;
  std::filesystem::path m_record;
};

}  // namespace rb::testing
