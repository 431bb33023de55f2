// Delivery of one notification to one channel (see delivery.hpp).
#include "engine/alert/delivery.hpp"

#include <algorithm>

namespace rb::alert {

milliseconds backoff(const retry_policy& p, int failed, std::optional<milliseconds> retry_after, std::mt19937_64& rng) {
  if (retry_after) {
    // Hammering a rate-limited endpoint makes it worse (alertmanager#2128): wait what it said,
    // plus a little so that several senders do not come back in the same millisecond.
    std::uniform_int_distribution<long long> extra(0, 250);
    return std::min(*retry_after, p.max_retry_after) + milliseconds(extra(rng));
  }
  long long base = p.initial.count();
  for (int i = 1; i < failed && base < p.max.count(); ++i) base *= 2;
  base = std::min(base, static_cast<long long>(p.max.count()));
  std::uniform_int_distribution<long long> jitter(0, std::max(1LL, base / 2));
  return milliseconds(base - base / 2 + jitter(rng));
}

delivery_result deliver(channel& ch, const notification& n, const std::string& delivery, const retry_policy& p,
                        interrupt& stop, const clock& clk, std::mt19937_64& rng, const retry_observer& on_retry) {
  delivery_result out;
  auto t0 = clk.now();
  auto finish = [&] {
    out.duration = std::chrono::duration_cast<milliseconds>(clk.now() - t0);
    return out;
  };
  for (int attempt = 1;; ++attempt) {
    if (stop.triggered()) {
      out.abandoned = true;
      return finish();
    }
    attempt_result r = ch.attempt(n, delivery, stop);
    out.attempts = attempt;
    out.status = r.status;
    out.body = r.body;
    if (r.outcome == attempt_result::verdict::delivered) {
      out.delivered = true;
      out.reason.clear();
      return finish();
    }
    if (stop.triggered()) {
      // The transfer was cut short by the interrupt: keep the reason of the last real answer.
      out.abandoned = true;
      return finish();
    }
    out.reason = r.reason;
    if (r.outcome == attempt_result::verdict::failed || attempt >= std::max(1, p.attempts)) return finish();
    milliseconds wait = backoff(p, attempt, r.retry_after, rng);
    if (on_retry) on_retry(attempt, r, wait);
    if (!stop.wait_until(clk, clk.now() + wait)) {
      out.abandoned = true;
      return finish();
    }
  }
}

}  // namespace rb::alert
