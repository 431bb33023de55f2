// Delivery of one notification to one channel: attempts, exponential backoff with jitter, Retry-After.
#pragma once

#include <functional>
#include <optional>
#include <random>
#include <string>

#include "engine/alert/channel.hpp"
#include "engine/alert/http.hpp"
#include "engine/util/clock.hpp"

namespace rb::alert {

/// When to try again. Network errors, 5xx and 429 are retried; other 4xx never (see http_verdict).
struct retry_policy {
  int attempts = 5;                         ///< attempts in all, the first included
  milliseconds initial{500};                ///< first backoff; doubles per attempt
  milliseconds max{30'000};                 ///< backoff cap
  milliseconds max_retry_after{60'000};     ///< a receiver's Retry-After is honoured up to this
};

/// The wait before the next attempt after `failed` attempts: exponential with jitter (half
/// fixed, half random, so senders that failed together do not retry together), or the
/// receiver's Retry-After (capped) when it gave one.
milliseconds backoff(const retry_policy& p, int failed, std::optional<milliseconds> retry_after, std::mt19937_64& rng);

/// How a delivery ended.
struct delivery_result {
  bool delivered = false;
  bool skipped = false;     ///< below the channel's min_severity: not sent
  bool abandoned = false;   ///< stopped by the interrupt (the wait for deliveries ended)
  int attempts = 0;
  long status = 0;          ///< the last HTTP status / SMTP code, 0 when none came
  std::string body;         ///< what the receiver last answered (bounded)
  std::string reason;       ///< why not delivered (the last attempt's reason)
  milliseconds duration{0};
};

/// Called before each wait between attempts: the attempt number, its result, and the wait.
using retry_observer = std::function<void(int attempt, const attempt_result& r, milliseconds wait)>;

/// Tries `ch` until delivered, failed for good, out of attempts, or `stop` is triggered. Waits
/// between attempts on `stop` (so they end at once when it fires), timed by `clk`.
delivery_result deliver(channel& ch, const notification& n, const std::string& delivery, const retry_policy& p,
                        interrupt& stop, const clock& clk, std::mt19937_64& rng, const retry_observer& on_retry = {});

}  // namespace rb::alert
