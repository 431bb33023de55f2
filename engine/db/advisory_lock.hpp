// Advisory locks: the run lock (one run per runbook and target, across hosts) and ctx.db:lock.
#pragma once

#include <optional>
#include <string>

#include "engine/db/connection.hpp"

namespace rb::db {

/// Who holds a run lock, as they recorded it.
struct lock_holder {
  int pid = 0;            ///< backend pid of the holder's session
  std::string run_id, host, since, runbook;
  long long client_pid = 0;
};

/// The 64-bit advisory lock key for a text key (stable across hosts and versions).
long long advisory_key(std::string_view key);

/// A session-level advisory lock held for a run: taken with pg_try_advisory_lock before the
/// first step, released at the end, and released by PostgreSQL if the holder's session dies,
/// so a crashed run leaves nothing stuck. The holder describes itself through
/// application_name, so a refused runner can say who holds it.
class run_lock {
 public:
  /// Tries to take the lock for `key` on `conn`. Throws rb::error(locked) naming the holder
  /// (backend pid, host, run id, since when) when another session has it.
  run_lock(connection& conn, const std::string& key, const std::string& run_id, const std::string& runbook);
  ~run_lock();
  run_lock(const run_lock&) = delete;
  run_lock& operator=(const run_lock&) = delete;

 private:
  connection& m_conn;
  long long m_key;
  std::string m_previous_application_name;  // restored on release
};

}  // namespace rb::db
