// RAII over a savepoint: each step of a transactional phase runs in one.
#pragma once

#include <string>

#include "engine/db/connection.hpp"

namespace rb::db {

/// SAVEPOINT on construction; ROLLBACK TO SAVEPOINT (then RELEASE) on destruction unless
/// release() succeeded. Names are quoted identifiers, so any step name is safe.
class savepoint {
 public:
  savepoint(connection& c, std::string name);
  ~savepoint();
  savepoint(const savepoint&) = delete;
  savepoint& operator=(const savepoint&) = delete;
  /// RELEASE SAVEPOINT: keeps the work.
  void release();
  /// ROLLBACK TO SAVEPOINT and RELEASE: undoes the work, keeps the transaction usable.
  void rollback();
  const std::string& name() const { return m_name; }

 private:
  connection& m_conn;
  std::string m_name;
  bool m_open = true;
};

}  // namespace rb::db
