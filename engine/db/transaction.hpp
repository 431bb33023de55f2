// RAII over a connection's transaction: rolls back unless committed.
#pragma once

#include "engine/db/connection.hpp"

namespace rb::db {

/// BEGIN on construction; ROLLBACK on destruction unless commit() succeeded. Used by
/// transactional phases and by ctx.db:transaction(fn).
class transaction {
 public:
  explicit transaction(connection& c);
  ~transaction();
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  /// COMMIT; throws in_doubt when the outcome is unknown.
  void commit();
  /// ROLLBACK now (idempotent). When the caller's own SQL had already ended the transaction
  /// (a COMMIT in a script), nothing is sent and outcome() says what that SQL did.
  void rollback();
  bool open() const { return m_open; }
  /// How it ended, as observed: "committed", "rolled_back", "in_doubt" (ended by the caller's
  /// SQL in a way that cannot be told), "lost" (the session went, and the transaction with it),
  /// or "open".
  std::string_view outcome() const { return m_outcome; }

 private:
  connection& m_conn;
  bool m_open = true;
  std::string_view m_outcome = "open";
};

}  // namespace rb::db
