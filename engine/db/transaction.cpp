// RAII over a connection's transaction: rolls back unless committed.
#include "engine/db/transaction.hpp"

namespace rb::db {

transaction::transaction(connection& c) : m_conn(c) { m_conn.begin(); }

transaction::~transaction() {
  if (!m_open) return;
  try {
    m_conn.rollback();
  } catch (const std::exception&) {
    // A destructor cannot report; a failed ROLLBACK leaves nothing committed either.
  }
}

void transaction::commit() {
  if (!m_open)
    throw error(error_kind::usage, "unable to commit on " + m_conn.name() + ": the transaction is already closed");
  try {
    m_conn.commit();
  } catch (const error& e) {
    // COMMIT ended the transaction either way (rolled back, or in doubt): nothing to roll back.
    m_open = m_conn.in_transaction();
    if (!m_open) m_outcome = e.kind() == error_kind::in_doubt ? "in_doubt" : "rolled_back";
    throw;
  }
  m_open = false;
  m_outcome = "committed";
}

void transaction::rollback() {
  if (!m_open) return;
  m_open = false;
  if (auto how = m_conn.ended_by_sql()) {
    m_outcome = to_string(*how);
    m_conn.rollback();  // whatever the SQL began since, if anything
    return;
  }
  m_outcome = "lost";
  m_conn.rollback();
  m_outcome = "rolled_back";
}

}  // namespace rb::db
