// The alert dispatcher: the run's notifier. Queues deliveries to a worker thread, audits every
// outcome, and waits for them at the end for at most a bounded time.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/alert/channel.hpp"
#include "engine/alert/delivery.hpp"
#include "engine/alert/notification.hpp"
#include "engine/audit/log.hpp"
#include "engine/util/clock.hpp"

namespace rb::alert {

struct dispatcher_options {
  std::size_t queue_limit = 1000;  ///< deliveries waiting beyond this are refused (alert.failed)
  retry_policy retry;              ///< `attempts` is taken from each channel's config
  /// Where the `log` channel's lines go (the run's output); nothing when unset.
  std::function<void(const std::string&)> print;
};

/// Implements `notifier` for a set of configured channels. send() returns at once; the
/// deliveries run on one worker thread (started by the first send that needs it). Every
/// outcome is a record in `log` under the notification's run id: `alert.sent`, `alert.failed`,
/// `alert.retry` (an attempt that will be retried), `alert.skipped` (below min_severity).
/// The audit log object must be this dispatcher's own (it is written from the worker).
class dispatcher final : public notifier {
 public:
  dispatcher(std::map<std::string, channel_config> channels, audit::log& log, clock& clk,
             dispatcher_options opts = {});
  /// Abandons what is still pending (audited as alert.failed) and stops the worker.
  ~dispatcher() override;
  dispatcher(const dispatcher&) = delete;
  dispatcher& operator=(const dispatcher&) = delete;

  /// Queues `n` for `channel` and returns its delivery id. Throws rb::error(usage) for a
  /// channel that is not configured; never throws for a delivery problem. A `log` channel
  /// delivers here and now.
  std::string send(const std::string& channel, const notification& n) override;

  /// One not delivered, and why.
  struct undelivered {
    std::string delivery, channel, reason;
  };
  /// Waits until every queued delivery has ended, at most `limit` (by the injected clock).
  /// What is still pending then is abandoned: a transfer under way is cut, backoff waits end,
  /// and each is audited as alert.failed. Returns every delivery of this dispatcher that
  /// did not arrive (abandoned now or failed before). The dispatcher stays usable.
  std::vector<undelivered> drain(milliseconds limit);

  /// The outcome of a delivery that has ended; nullopt while pending or for an unknown id.
  std::optional<delivery_result> result(const std::string& delivery) const;
  bool has_channel(const std::string& name) const { return m_channels.count(name) > 0; }
  std::vector<std::string> channel_names() const;

 private:
  struct job {
    std::string id;
    channel* ch;
    notification n;
  };
  void worker();
  void finish(const job& j, const delivery_result& r);
  void audit(const notification& n, std::string_view event, json fields);
  json common_fields(const job& j) const;

  std::map<std::string, std::unique_ptr<channel>> m_channels;
  audit::log& m_log;
  clock& m_clock;
  dispatcher_options m_opts;
  std::string m_prefix;  ///< random, so delivery ids are unique across processes
  std::mt19937_64 m_rng;

  mutable std::mutex m_mutex;
  std::condition_variable m_work, m_done;
  std::deque<job> m_queue;
  bool m_busy = false;      ///< the worker is delivering one
  bool m_closing = false;
  std::shared_ptr<interrupt> m_stop;
  std::string m_abandon_reason;
  std::map<std::string, delivery_result> m_results;
  std::vector<undelivered> m_failed;
  unsigned long m_next = 0;
  std::thread m_thread;
  std::mutex m_audit_mutex;
};

}  // namespace rb::alert
