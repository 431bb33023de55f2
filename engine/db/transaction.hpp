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
  /// ROLLBACK now (idempotent).
  void rollback();
  bool open() const { return m_open; }

 private:
  connection& m_conn;
  bool m_open = true;
};

}  // namespace rb::db
