// The one libcurl wrapper of the alert channels: a POST (or an SMTP send) with connect and total
// timeouts, abandoned at once when the dispatcher's deadline passes; URL checks.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/util/clock.hpp"

namespace rb::alert {

using milliseconds = std::chrono::milliseconds;

/// A stop signal shared by a delivery's transfers and its backoff waits: once triggered, a
/// transfer under way is abandoned (its poll is woken, not left to time out) and waits end.
class interrupt {
 public:
  /// Abandons what is under way and everything after it. Thread-safe.
  void trigger();
  bool triggered() const { return m_set.load(); }
  /// Waits until `until` by `clk` (or as long in real time, should `clk` be a fake nobody
  /// moves) or until triggered; false when triggered.
  bool wait_until(const clock& clk, std::chrono::steady_clock::time_point until);

  /// Used by perform(): the multi handle a transfer runs on, to wake it.
  bool attach(void* multi);
  void detach();

 private:
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::atomic<bool> m_set{false};
  void* m_multi = nullptr;
};

/// Calls curl_global_init once (before any thread is started by the dispatcher).
void http_global_init();

struct http_request {
  std::string url;
  std::vector<std::string> headers;  ///< "Name: value"
  std::string body;
  milliseconds timeout{10'000};
  milliseconds connect_timeout{5'000};
};

struct http_response {
  long status = 0;        ///< 0 when no answer came
  std::string body;       ///< at most 64 KiB
  std::optional<milliseconds> retry_after;
  std::string error;      ///< set when no answer came: the network error, in words
};

/// POSTs `req` (Content-Type: application/json unless a header says otherwise).
http_response http_post(const http_request& req, interrupt& stop);

/// Runs a configured libcurl easy handle to completion on a multi handle `stop` can wake.
/// Returns the CURLcode; `error` gets libcurl's message when it is not CURLE_OK.
int perform(void* easy, interrupt& stop, std::string& error);

/// nullopt when `url` parses (libcurl's URL API) with one of `schemes`; else why not.
std::optional<std::string> check_url(const std::string& url, const std::vector<std::string>& schemes);

/// A Retry-After value (delta seconds or an HTTP date) as a wait; nullopt when unreadable.
std::optional<milliseconds> parse_retry_after(const std::string& value);

}  // namespace rb::alert
