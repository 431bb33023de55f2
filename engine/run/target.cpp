// The run's database target.
#include "engine/run/target.hpp"

#include "engine/error.hpp"

namespace rb::run {

target_session::target_session(std::optional<resolved_target> target) : m_target(std::move(target)) {}
target_session::~target_session() { m_live.store(nullptr); }

const resolved_target& target_session::target() const {
  if (!m_target)
    throw error(error_kind::usage,
                "this runbook uses the database but no target is set: pass --target NAME (from runbook.lua), "
                "--dsn DSN, set RUNBOOK_DSN, or try it with --sandbox");
  return *m_target;
}

db::connection& target_session::get() {
  const resolved_target& t = target();
  if (m_conn && !m_conn->is_open()) m_conn->reconnect();
  if (!m_conn) {
    db::connection_options o;
    o.dsn = t.dsn;
    o.name = "target '" + t.name + "'";
    m_conn = std::make_unique<db::connection>(o);
    m_live.store(m_conn.get());
    if (m_on_statement) m_conn->on_statement(m_on_statement);
    m_conn->set_statement_timeout(t.statement_timeout);
    m_conn->set_lock_timeout(t.lock_timeout);
    m_conn->set_session_settings(t.settings);
  }
  return *m_conn;
}

std::optional<std::string> target_session::close_stray_transaction() {
  if (!m_conn || !m_conn->in_transaction()) return std::nullopt;
  bool by_sql = m_conn->transaction_begun_by_sql();
  bool failed = m_conn->transaction_failed();
  try {
    m_conn->rollback();
  } catch (const std::exception&) {
    // the session is gone, and the transaction with it: the next statement reconnects
  }
  if (!by_sql) return std::nullopt;
  return failed ? "its SQL began a transaction (BEGIN) that then failed, and left it open; it was rolled back"
                : "its SQL began a transaction (BEGIN) and left it open without COMMIT; it was rolled back, so "
                  "nothing done in it stands";
}

std::unique_ptr<db::connection> target_session::open_another(const std::string& purpose) const {
  const resolved_target& t = target();
  db::connection_options o;
  o.dsn = t.dsn;
  o.name = "target '" + t.name + "' (" + purpose + ")";
  auto c = std::make_unique<db::connection>(o);
  if (m_on_statement) c->on_statement(m_on_statement);
  c->set_lock_timeout(t.lock_timeout);
  c->set_session_settings(t.settings);
  return c;
}

}  // namespace rb::run
