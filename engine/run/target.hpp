// The run's database target: one lazily opened connection shared by the executor (phase
// transactions, savepoints, run lock) and the runbook's ctx.db.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>

#include "engine/db/connection.hpp"
#include "engine/run/config.hpp"

namespace rb::run {

class target_session {
 public:
  explicit target_session(std::optional<resolved_target> target);
  ~target_session();
  target_session(const target_session&) = delete;
  target_session& operator=(const target_session&) = delete;

  /// True when the run has a database target at all.
  bool configured() const { return m_target.has_value(); }
  const resolved_target& target() const;
  /// The connection, opened on first use (and re-opened after it was lost). Throws
  /// rb::error(usage) when the run has no target.
  db::connection& get();
  bool connected() const { return m_conn != nullptr; }
  /// Cancels the statement running on the connection now, if any (safe from another thread).
  void cancel_running() {
    if (db::connection* c = m_live.load()) c->cancel();
  }
  /// The next statement starts from a known session state: RESET ALL, then the target's
  /// timeouts and settings, if SQL ran since the last step began (connection::reset_session).
  void start_step() {
    if (m_conn) m_conn->reset_session();
  }
  /// Rolls back a transaction left open on the connection by the code that just ran (its own
  /// BEGIN without a COMMIT, or one its failure aborted), so the next step and every rollback
  /// handler start from an idle session. Returns why, when the code's own SQL had begun it.
  std::optional<std::string> close_stray_transaction();
  /// How SQL run on the connection ended the transaction begin() had opened, if it did.
  std::optional<db::tx_end> ended_by_sql() const { return m_conn ? m_conn->ended_by_sql() : std::nullopt; }
  /// A second, independent connection to the same target (run lock, db.connect()).
  std::unique_ptr<db::connection> open_another(const std::string& purpose) const;
  /// Called for every statement on connections this session opens, and on the one open now
  /// (a run that starts on a connection opened before it, as a rehearsal's, is audited too; an
  /// ended run's hook does not outlive it).
  void on_statement(std::function<void(const db::statement_record&)> fn) {
    m_on_statement = std::move(fn);
    if (m_conn) m_conn->on_statement(m_on_statement);
  }

 private:
  std::optional<resolved_target> m_target;
  std::unique_ptr<db::connection> m_conn;
  std::atomic<db::connection*> m_live{nullptr};
  std::function<void(const db::statement_record&)> m_on_statement;
};

}  // namespace rb::run
