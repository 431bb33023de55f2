// The alert dispatcher (see dispatcher.hpp).
#include "engine/alert/dispatcher.hpp"

#include <spdlog/spdlog.h>

#include "engine/error.hpp"
#include "engine/util/duration.hpp"
#include "engine/util/hash.hpp"
#include "engine/util/text.hpp"

namespace rb::alert {

dispatcher::dispatcher(std::map<std::string, channel_config> channels, audit::log& log, clock& clk,
                       dispatcher_options opts)
    : m_log(log), m_clock(clk), m_opts(std::move(opts)), m_prefix(random_hex(4)),
      m_rng(std::random_device{}()), m_stop(std::make_shared<interrupt>()) {
  http_global_init();  // before any thread
  for (auto& [name, cfg] : channels) {
    cfg.name = name;
    m_channels[name] = make_channel(cfg);
  }
}

dispatcher::~dispatcher() {
  {
    std::lock_guard lock(m_mutex);
    if (!m_queue.empty() || m_busy) m_abandon_reason = "abandoned: the process ended before it was delivered";
    m_closing = true;
    m_stop->trigger();
  }
  m_work.notify_all();
  if (m_thread.joinable()) m_thread.join();
}

std::vector<std::string> dispatcher::channel_names() const {
  std::vector<std::string> out;
  for (const auto& [name, ch] : m_channels) out.push_back(name);
  return out;
}

void dispatcher::audit(const notification& n, std::string_view event, json fields) {
  std::string run = !n.run_id.empty() ? n.run_id : !n.incident.empty() ? n.incident : "alert";
  try {
    std::lock_guard lock(m_audit_mutex);
    m_log.append(run, event, std::move(fields), event != "alert.retry");
  } catch (const std::exception& e) {
    spdlog::warn("unable to audit {}: {}", event, e.what());
  }
}

json dispatcher::common_fields(const job& j) const {
  json f = {{"delivery", j.id}, {"channel", j.ch->config().name}, {"type", to_string(j.ch->config().type)},
            {"severity", j.n.severity}, {"action", j.n.action}, {"dedup", dedup_key(j.n)}};
  if (!j.n.incident.empty()) {
    f["incident"] = j.n.incident;
    f["level"] = j.n.level;
  }
  return f;
}

std::string dispatcher::send(const std::string& channel_name, const notification& given) {
  auto it = m_channels.find(channel_name);
  if (it == m_channels.end()) {
    std::vector<std::string> names = channel_names();
    throw error(error_kind::usage, "no alert channel '" + channel_name + "'" + did_you_mean(channel_name, names) +
                                       (names.empty() ? "; the config has no channels" : "; channels: " + join(names, ", ")));
  }
  job j{"", it->second.get(), given};
  if (j.n.timestamp.empty()) j.n.timestamp = rfc3339_now();
  {
    std::lock_guard lock(m_mutex);
    j.id = "d-" + m_prefix + "-" + std::to_string(++m_next);
  }
  const channel_config& cfg = j.ch->config();
  int rank = severity_rank(j.n.severity);
  if (rank > severity_rank(cfg.min_severity)) {
    json f = common_fields(j);
    f["min_severity"] = cfg.min_severity;
    audit(j.n, "alert.skipped", std::move(f));
    delivery_result r;
    r.skipped = true;
    std::lock_guard lock(m_mutex);
    m_results[j.id] = r;
    return j.id;
  }
  if (cfg.type == channel_type::log) {
    // Nothing to wait for: the run's output and the audit are the channel.
    interrupt none;
    attempt_result a = j.ch->attempt(j.n, j.id, none);
    if (m_opts.print) m_opts.print(a.body);
    delivery_result r;
    r.delivered = true;
    r.attempts = 1;
    r.body = a.body;
    finish(j, r);
    return j.id;
  }
  std::unique_lock lock(m_mutex);
  if (m_queue.size() >= m_opts.queue_limit) {
    lock.unlock();
    delivery_result r;
    r.reason = "the alert queue is full (" + std::to_string(m_opts.queue_limit) + " waiting)";
    finish(j, r);
    return j.id;
  }
  std::string id = j.id;
  m_queue.push_back(std::move(j));
  if (!m_thread.joinable()) m_thread = std::thread([this] { worker(); });
  lock.unlock();
  m_work.notify_one();
  return id;
}

void dispatcher::worker() {
  for (;;) {
    std::unique_lock lock(m_mutex);
    m_work.wait(lock, [&] { return !m_queue.empty() || m_closing; });
    if (m_queue.empty()) return;
    job j = std::move(m_queue.front());
    m_queue.pop_front();
    m_busy = true;
    std::shared_ptr<interrupt> stop = m_stop;
    lock.unlock();

    retry_policy p = m_opts.retry;
    p.attempts = j.ch->config().attempts;
    delivery_result r = deliver(*j.ch, j.n, j.id, p, *stop, m_clock, m_rng,
                                [&](int attempt, const attempt_result& a, milliseconds wait) {
                                  json f = common_fields(j);
                                  f["attempt"] = attempt;
                                  if (a.status) f["status"] = a.status;
                                  f["reason"] = a.reason;
                                  f["wait_ms"] = wait.count();
                                  audit(j.n, "alert.retry", std::move(f));
                                });
    finish(j, r);
    lock.lock();
    m_busy = false;
    lock.unlock();
    m_done.notify_all();
  }
}

void dispatcher::finish(const job& j, const delivery_result& given) {
  delivery_result r = given;
  if (r.abandoned) {
    std::lock_guard lock(m_mutex);
    std::string last = r.reason;
    r.reason = m_abandon_reason.empty() ? "abandoned" : m_abandon_reason;
    r.reason += last.empty() ? " (no answer yet)" : " (last attempt: " + last + ")";
  }
  json f = common_fields(j);
  if (r.delivered) {
    if (r.status) f["status"] = r.status;
    f["attempts"] = r.attempts;
    f["duration_ms"] = r.duration.count();
    audit(j.n, "alert.sent", std::move(f));
  } else {
    f["reason"] = r.reason;
    if (r.status) f["status"] = r.status;
    f["attempts"] = r.attempts;
    f["duration_ms"] = r.duration.count();
    audit(j.n, "alert.failed", std::move(f));
  }
  std::lock_guard lock(m_mutex);
  m_results[j.id] = r;
  if (!r.delivered) m_failed.push_back({j.id, j.ch->config().name, r.reason});
}

std::vector<dispatcher::undelivered> dispatcher::drain(milliseconds limit) {
  // Over when the injected clock has moved `limit` on, or as much real time has passed (a
  // fake clock nobody moves must not make the run's end wait forever).
  auto deadline = m_clock.now() + limit;
  auto real_deadline = std::chrono::steady_clock::now() + limit;
  std::unique_lock lock(m_mutex);
  while ((!m_queue.empty() || m_busy) && m_clock.now() < deadline && std::chrono::steady_clock::now() < real_deadline) {
    auto left = std::min(deadline - m_clock.now(), real_deadline - std::chrono::steady_clock::now());
    m_done.wait_for(lock, std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(50)));
  }
  if (!m_queue.empty() || m_busy) {
    // Out of time: cut what is under way; the worker fails the rest at once.
    m_abandon_reason = "not delivered within alert_wait " +
                       (limit.count() % 1000 == 0 ? std::to_string(limit.count() / 1000) + "s" : format_duration(limit));
    m_stop->trigger();
    m_done.wait(lock, [&] { return m_queue.empty() && !m_busy; });
    m_stop = std::make_shared<interrupt>();  // later sends start afresh
    m_abandon_reason.clear();
  }
  return m_failed;
}

std::optional<delivery_result> dispatcher::result(const std::string& delivery) const {
  std::lock_guard lock(m_mutex);
  auto it = m_results.find(delivery);
  if (it == m_results.end()) return std::nullopt;
  return it->second;
}

}  // namespace rb::alert
