// A run's stop token: request, acknowledge, wake waiters (condition variable and eventfd).
#include "engine/run/stop.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/error.hpp"

namespace rb::run {

stop_source::stop_source() {
  m_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (m_fd < 0) throw error(error_kind::internal, std::string("unable to make a stop token: eventfd: ") + std::strerror(errno));
}

stop_source::~stop_source() {
  if (m_fd >= 0) ::close(m_fd);
}

void stop_source::request(int signo) {
  // Callbacks first: one registered now either sees the request or is run by it, never both.
  std::lock_guard<std::mutex> callbacks(m_callbacks_mutex);
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_state.load() != k_idle) return;
    m_signo.store(signo);
    m_state.store(k_requested, std::memory_order_release);
  }
  m_cv.notify_all();
  std::uint64_t one = 1;
  ssize_t ignored = ::write(m_fd, &one, sizeof one);
  (void)ignored;
  for (auto& fn : m_callbacks) fn();
}

void stop_source::acknowledge() {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_state.load() == k_requested) m_state.store(k_acknowledged, std::memory_order_release);
}

bool stop_source::wait_for(std::chrono::milliseconds d) const {
  std::unique_lock<std::mutex> lock(m_mutex);
  return m_cv.wait_for(lock, d, [this] { return requested(); });
}

stop_source::callback stop_source::on_request(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(m_callbacks_mutex);
  if (requested()) fn();
  auto it = m_callbacks.insert(m_callbacks.end(), std::move(fn));
  return callback(this, it);
}

stop_source::callback::~callback() {
  if (!m_src) return;
  std::lock_guard<std::mutex> lock(m_src->m_callbacks_mutex);
  m_src->m_callbacks.erase(m_it);
}

}  // namespace rb::run
