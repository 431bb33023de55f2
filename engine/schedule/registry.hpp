// The schedule registry: due runs claimed in PostgreSQL, so each runs exactly once across hosts.
//
// With `registry = "<target>"` in the config, every scheduler (on any host) claims a due run
// by inserting (runbook, target, due) into runbook.claims before starting it; the primary key
// decides, so exactly one scheduler wins each due time. The claim then records the run's id,
// process and outcome, so a scheduler killed mid-run leaves a claim that is visibly dead and
// never blocks a later due time (that is another row). The schema is created and migrated on
// demand under an advisory lock, and a schema newer than this binary knows is refused.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/db/connection.hpp"

namespace rb::schedule {

/// The registry schema version this binary writes.
inline constexpr int k_registry_version = 2;

/// One claim, as stored.
struct claim {
  std::string runbook, target, due;  ///< due: RFC 3339 UTC
  std::string host, status, run_id;
  long long pid = 0;
  std::string claimed_at, finished_at;
  /// The claiming scheduler's registry session is still connected (its backend is alive).
  bool scheduler_alive = false;
};

class registry {
 public:
  /// Uses `conn` (the registry target's session; the registry never opens a transaction the
  /// caller has open). Creates or migrates the schema. Throws rb::error(usage) when the schema
  /// is newer than k_registry_version. A session lost later (a server restart, a dropped
  /// connection) is opened again at the next call, and the claims of the lost session that
  /// no other scheduler has marked lost yet are carried over to the new one.
  explicit registry(db::connection& conn);

  /// Claims (runbook, target, due) for this scheduler (host, pid). True when this call won it;
  /// false when any scheduler claimed it before, or when another due time of the same runbook
  /// and target is still running (started()) under a scheduler whose registry session is
  /// alive (then `busy`, if given, says which). A claim whose scheduler's session is gone (the
  /// scheduler was killed, or its host lost) is marked `lost` first and blocks nothing.
  bool try_claim(const std::string& runbook, const std::string& target, const std::string& due_utc,
                 const std::string& host, long long pid, std::string* busy = nullptr);
  /// Records the run started for a claim (its id and process).
  void started(const std::string& runbook, const std::string& target, const std::string& due_utc,
               const std::string& run_id, long long pid);
  /// Records how the claimed run ended: succeeded, failed, rolled_back, skipped, locked, ...
  void finished(const std::string& runbook, const std::string& target, const std::string& due_utc,
                const std::string& status);
  /// The latest claims, newest due first (all runbooks when `runbook` is empty).
  std::vector<claim> recent(const std::string& runbook = "", int limit = 50);

 private:
  bool claim_once(const std::string& runbook, const std::string& target, const std::string& due_utc,
                  const std::string& host, long long pid, std::string* busy);
  template <class F>
  decltype(auto) connected(F&& op);
  void remember_session();
  void reconnect();

  db::connection& m_conn;
  std::string m_backend_pid, m_backend_start;  ///< the session claims are recorded under
};

}  // namespace rb::schedule
