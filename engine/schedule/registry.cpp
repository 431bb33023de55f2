// The schedule registry: schema migration under an advisory lock, claims by primary key.
#include "engine/schedule/registry.hpp"

#include "engine/error.hpp"

namespace rb::schedule {
namespace {

/// Migrations, in order: migration i brings the schema to version i + 1.
const char* const k_migrations[] = {
    R"(CREATE TABLE runbook.claims (
         runbook     text        NOT NULL,
         target      text        NOT NULL,
         due         timestamptz NOT NULL,
         host        text        NOT NULL,
         pid         bigint      NOT NULL,
         claimed_at  timestamptz NOT NULL DEFAULT now(),
         status      text        NOT NULL DEFAULT 'claimed',
         run_id      text,
         finished_at timestamptz,
         PRIMARY KEY (runbook, target, due)))",
    // The claiming scheduler's registry session: while it is connected the claim is live; when
    // it is gone (kill -9, a lost host) the claim is visibly dead and blocks nothing.
    "ALTER TABLE runbook.claims ADD COLUMN backend_pid int, ADD COLUMN backend_start timestamptz",
};
static_assert(sizeof k_migrations / sizeof *k_migrations == k_registry_version);

/// True for a claim (aliased c) whose scheduler's registry session is still connected. A
/// backend_start hidden from this role (another role's session) counts as alive.
constexpr const char* k_alive_sql =
    "EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = c.backend_pid "
    "AND (a.backend_start IS NULL OR a.backend_start = c.backend_start))";

std::string stamp_sql(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
}

}  // namespace

registry::registry(db::connection& conn) : m_conn(conn) {
  // Fast path: already at our version (one round trip, no lock).
  int version = 0;
  if (!m_conn.exec("SELECT to_regclass('runbook.schema_version')").rows.at(0).at(0).null)
    version = std::stoi(m_conn.exec("SELECT coalesce(max(version), 0) FROM runbook.schema_version").rows.at(0).at(0).text);
  if (version == k_registry_version) {
    remember_session();
    return;
  }
  if (version > k_registry_version)
    throw error(error_kind::usage, "the schedule registry's schema is version " + std::to_string(version) +
                                       ", newer than this runbook understands (" + std::to_string(k_registry_version) +
                                       "): upgrade runbook on this host");
  m_conn.begin();
  try {
    m_conn.exec("SELECT pg_advisory_xact_lock(hashtext('runbook.registry'))");
    m_conn.exec("CREATE SCHEMA IF NOT EXISTS runbook");
    m_conn.exec("CREATE TABLE IF NOT EXISTS runbook.schema_version (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
    auto r = m_conn.exec("SELECT coalesce(max(version), 0) FROM runbook.schema_version");
    int have = std::stoi(r.rows.at(0).at(0).text);  // another scheduler may have migrated meanwhile
    if (have > k_registry_version) {
      m_conn.rollback();
      throw error(error_kind::usage, "the schedule registry's schema is version " + std::to_string(have) +
                                         ", newer than this runbook understands: upgrade runbook on this host");
    }
    for (int i = have; i < k_registry_version; ++i) {
      m_conn.exec(k_migrations[i]);
      m_conn.exec("INSERT INTO runbook.schema_version (version) VALUES ($1::int)", {std::to_string(i + 1)});
    }
    m_conn.commit();
  } catch (const std::exception&) {
    if (m_conn.in_transaction()) m_conn.rollback();
    throw;
  }
  remember_session();
}

void registry::remember_session() {
  auto r = m_conn.exec("SELECT pg_backend_pid()::text, coalesce((SELECT backend_start::text FROM pg_stat_activity "
                       "WHERE pid = pg_backend_pid()), '')");
  m_backend_pid = r.rows.at(0).at(0).text;
  m_backend_start = r.rows.at(0).at(1).text;
}

void registry::reconnect() {
  if (m_conn.in_transaction()) {
    try {
      m_conn.rollback();
    } catch (const std::exception&) {
      // the transaction went with the session
    }
  }
  m_conn.reconnect();
  // Claims recorded under the lost session carry on under this one, unless another scheduler
  // found that session gone first and marked them lost.
  m_conn.exec("UPDATE runbook.claims SET backend_pid = pg_backend_pid(), backend_start = "
              "(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()) "
              "WHERE backend_pid = $1::int AND backend_start::text = $2 AND status IN ('claimed', 'running')",
              {m_backend_pid, m_backend_start});
  remember_session();
}

template <class F>
decltype(auto) registry::connected(F&& op) {
  if (!m_conn.is_open()) reconnect();
  try {
    return op();
  } catch (const error& e) {
    if (e.kind() != error_kind::connection) throw;
  }
  reconnect();  // the session was lost under the call: once more on a new one
  return op();
}

bool registry::try_claim(const std::string& runbook, const std::string& target, const std::string& due_utc,
                         const std::string& host, long long pid, std::string* busy) {
  return connected([&] { return claim_once(runbook, target, due_utc, host, pid, busy); });
}

bool registry::claim_once(const std::string& runbook, const std::string& target, const std::string& due_utc,
                          const std::string& host, long long pid, std::string* busy) {
  m_conn.begin();
  try {
    // One decision at a time per (runbook, target); different due times of one entry would
    // otherwise both see "nothing running" and both start.
    m_conn.exec("SELECT pg_advisory_xact_lock(hashtext('runbook.claims'), hashtext($1 || '@' || $2))", {runbook, target});
    m_conn.exec(std::string("UPDATE runbook.claims c SET status = 'lost', finished_at = now() "
                            "WHERE runbook = $1 AND target = $2 AND status IN ('claimed', 'running') AND NOT ") +
                    k_alive_sql,
                {runbook, target});
    auto live = m_conn.exec("SELECT " + stamp_sql("due") + ", host, pid FROM runbook.claims "
                            "WHERE runbook = $1 AND target = $2 AND status = 'running' "
                            "AND due <> $3::timestamptz ORDER BY due LIMIT 1",
                            {runbook, target, due_utc});
    if (!live.rows.empty()) {
      m_conn.commit();
      if (busy)
        *busy = "its run of " + live.rows[0][0].text + " is still going (host " + live.rows[0][1].text + ", pid " +
                live.rows[0][2].text + ")";
      return false;
    }
    auto r = m_conn.exec(
        "INSERT INTO runbook.claims (runbook, target, due, host, pid, backend_pid, backend_start) "
        "SELECT $1, $2, $3::timestamptz, $4, $5::bigint, pg_backend_pid(), "
        "(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        {runbook, target, due_utc, host, std::to_string(pid)});
    m_conn.commit();
    if (busy) busy->clear();
    return !r.rows.empty();
  } catch (const std::exception&) {
    if (m_conn.in_transaction()) m_conn.rollback();
    throw;
  }
}

void registry::started(const std::string& runbook, const std::string& target, const std::string& due_utc,
                       const std::string& run_id, long long pid) {
  connected([&] {
    m_conn.exec(
      "UPDATE runbook.claims SET status = 'running', run_id = $4, pid = $5::bigint "
      "WHERE runbook = $1 AND target = $2 AND due = $3::timestamptz",
      {runbook, target, due_utc, run_id, std::to_string(pid)});
  });
}

void registry::finished(const std::string& runbook, const std::string& target, const std::string& due_utc,
                        const std::string& status) {
  connected([&] {
    m_conn.exec(
      "UPDATE runbook.claims SET status = $4, finished_at = now() "
      "WHERE runbook = $1 AND target = $2 AND due = $3::timestamptz",
      {runbook, target, due_utc, status});
  });
}

std::vector<claim> registry::recent(const std::string& runbook, int limit) {
  auto r = connected([&] { return m_conn.exec("SELECT runbook, target, " + stamp_sql("due") + ", host, pid, status, coalesce(run_id, ''), " +
                           stamp_sql("claimed_at") + ", coalesce(" + stamp_sql("finished_at") +
                           ", ''), " + k_alive_sql +
                           " FROM runbook.claims c WHERE $1 = '' OR runbook = $1 ORDER BY due DESC, runbook, target LIMIT $2::int",
                       {runbook, std::to_string(limit)}); });
  std::vector<claim> out;
  for (const auto& row : r.rows) {
    claim c;
    c.runbook = row[0].text;
    c.target = row[1].text;
    c.due = row[2].text;
    c.host = row[3].text;
    c.pid = std::stoll(row[4].text);
    c.status = row[5].text;
    c.run_id = row[6].text;
    c.claimed_at = row[7].text;
    c.finished_at = row[8].text;
    c.scheduler_alive = row[9].text == "t";
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace rb::schedule
