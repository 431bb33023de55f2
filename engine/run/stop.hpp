// A run's stop token: the operator's cancel of one run, and a way for its waiters to wake at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <list>
#include <mutex>

#include "engine/util/clock.hpp"

namespace rb::run {

/// Asks one run to stop: its executor (between steps), the sandbox's hook (in its Lua code),
/// its shell commands (killed) and its SQL in flight (cancelled) watch it, nothing else does,
/// so several runs in one process never see each other's cancel. The CLI forwards SIGINT and
/// SIGTERM to the stop_source of the run it runs (cancel.hpp). Thread-safe; request() may be
/// called from any thread, but not from a signal handler.
class stop_source final : public interrupt {
 public:
  stop_source();
  ~stop_source() override;
  stop_source(const stop_source&) = delete;
  stop_source& operator=(const stop_source&) = delete;

  /// Requests a stop. `signo` is the signal that asked (SIGINT, SIGTERM), 0 for none. Wakes
  /// every waiter and runs the on_request callbacks on the calling thread. Later requests of
  /// the same run do nothing.
  void request(int signo = 0);
  /// True when a stop was requested and the executor has not taken it up yet.
  bool requested() const { return m_state.load(std::memory_order_acquire) == k_requested; }
  /// True when a stop was ever requested, taken up or not.
  bool ever_requested() const { return m_state.load(std::memory_order_acquire) != k_idle; }
  /// The executor has taken the request up: from here on nothing of the run is interrupted
  /// (its rollback path must run). requested() is false again; ever_requested() stays true.
  void acknowledge();
  /// The signal that asked for the stop, or 0.
  int signal_number() const { return m_signo.load(); }

  /// Blocks up to `d` of real time, or until a stop is requested; true when one was.
  bool wait_for(std::chrono::milliseconds d) const override;
  bool interrupted() const override { return requested(); }
  /// A descriptor that becomes readable when a stop is requested (for poll() loops: shell
  /// commands). Stays readable once requested; watch it only while requested() can still be
  /// true (not after acknowledge()).
  int wake_fd() const { return m_fd; }

  /// A callback registered with on_request; unregistered (waiting for a running call) when
  /// destroyed.
  class callback {
   public:
    callback() = default;
    callback(callback&& o) noexcept : m_src(o.m_src), m_it(o.m_it) { o.m_src = nullptr; }
    callback& operator=(callback&&) = delete;
    callback(const callback&) = delete;
    ~callback();

   private:
    friend class stop_source;
    callback(stop_source* src, std::list<std::function<void()>>::iterator it) : m_src(src), m_it(it) {}
    stop_source* m_src = nullptr;
    std::list<std::function<void()>>::iterator m_it;
  };
  /// Runs `fn` when a stop is requested (on the requesting thread; at once when one was
  /// already requested and not taken up), while the returned callback lives. `fn` must be
  /// quick and must not call back into this stop_source.
  [[nodiscard]] callback on_request(std::function<void()> fn);

 private:
  static constexpr int k_idle = 0, k_requested = 1, k_acknowledged = 2;
  std::atomic<int> m_state{k_idle};
  std::atomic<int> m_signo{0};
  int m_fd = -1;  ///< eventfd, written once on request
  mutable std::mutex m_mutex;
  mutable std::condition_variable m_cv;
  std::mutex m_callbacks_mutex;  ///< held while callbacks run, so unregistering waits for them
  std::list<std::function<void()>> m_callbacks;
};

}  // namespace rb::run
