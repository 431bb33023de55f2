// A connection's deadline: a watchdog thread that cancels the statement in flight when the
// deadline passes, cancel() from any thread, and no statement started past the deadline.
#include "engine/db/connection_impl.hpp"

namespace rb::db {

connection::impl::busy_scope::busy_scope(impl& m, const std::string& what, std::string_view sql, bool cleanup)
    : m_impl(m) {
  std::lock_guard lk(m.mu);
  if (!cleanup && m.deadline && steady::now() >= *m.deadline)
    throw m.failure(error_kind::timeout, what, "the deadline passed before the statement could start", "57014",
                    sql);
  m.busy = true;
  m.busy_cleanup = cleanup;
  m.cancel_sent = false;
  m.flags = {};
}

connection::impl::cancel_flags connection::impl::busy_scope::finish() {
  std::lock_guard lk(m_impl.mu);
  m_impl.busy = false;
  return m_impl.flags;
}

void connection::impl::watch() {
  std::unique_lock lk(mu);
  while (!stopping) {
    if (!deadline) {
      cv.wait(lk);
      continue;
    }
    auto d = *deadline;
    if (steady::now() < d) {
      cv.wait_until(lk, d);
      continue;
    }
    if (busy && !busy_cleanup && !cancel_sent) {
      flags.by_deadline = true;
      send_cancel_locked();
    }
    cv.wait(lk);  // until the deadline moves or we stop; no statement starts past it
  }
}

void connection::impl::send_cancel_locked() {
  cancel_sent = true;
  if (!cancel_handle) return;
  char err[256];
  PQcancel(cancel_handle, err, sizeof err);  // failure: nothing more we can do; it runs on
}

void connection::cancel() {
  std::lock_guard lk(m->mu);
  if (!m->busy || m->cancel_sent) return;
  m->flags.by_user = true;
  m->send_cancel_locked();
}

void connection::set_deadline(std::optional<std::chrono::steady_clock::time_point> deadline) {
  {
    std::lock_guard lk(m->mu);
    if (m->deadline == deadline) return;
    m->deadline = deadline;
    if (deadline && !m->watchdog.joinable()) m->watchdog = std::thread([self = m.get()] { self->watch(); });
  }
  m->cv.notify_all();
}

}  // namespace rb::db
