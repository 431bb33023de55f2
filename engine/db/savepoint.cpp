// RAII over a savepoint: each step of a transactional phase runs in one.
#include "engine/db/savepoint.hpp"

namespace rb::db {

savepoint::savepoint(connection& c, std::string name) : m_conn(c), m_name(std::move(name)) { m_conn.savepoint(m_name); }

savepoint::~savepoint() {
  if (!m_open) return;
  try {
    rollback();
  } catch (const std::exception&) {
    // The transaction failed or the session is gone: the enclosing ROLLBACK undoes the work.
  }
}

void savepoint::release() {
  if (!m_open)
    throw error(error_kind::usage,
                "unable to release savepoint '" + m_name + "' on " + m_conn.name() + ": it is already closed");
  m_conn.release(m_name);
  m_open = false;  // only now: a failed RELEASE leaves the destructor to roll back to it
}

void savepoint::rollback() {
  if (!m_open) return;
  m_open = false;
  m_conn.rollback_to(m_name);
  m_conn.release(m_name);
}

}  // namespace rb::db
