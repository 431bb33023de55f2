// Advisory locks: the run lock (one run per runbook and target, across hosts) and ctx.db:lock.
#include "engine/db/advisory_lock.hpp"

#include <unistd.h>

#include <cstdint>
#include <string_view>

#include "engine/util/hash.hpp"

namespace rb::db {
namespace {

constexpr std::string_view k_app_prefix = "runbook:";
constexpr std::size_t k_max_application_name = 63;  // NAMEDATALEN - 1; longer is truncated

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "unknown-host";
  return buf;
}

/// PostgreSQL keeps only printable ASCII of application_name (others become '?'): say so first.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) out += (c >= 32 && c < 127) ? c : '?';
  return out;
}

/// "runbook:<run_id>@<host>:<client pid>" within 63 bytes: the host gives way first, then the
/// run id, so the pid (which tells a refused operator which process to look at) always fits.
std::string holder_application_name(const std::string& run_id, const std::string& host, long long pid) {
  std::string id = printable(run_id), h = printable(host);
  std::string tail = ":" + std::to_string(pid);
  std::size_t fixed = k_app_prefix.size() + 1 + tail.size();
  std::size_t room = k_max_application_name - fixed;
  if (id.size() + h.size() > room) {
    std::size_t host_room = room > id.size() ? room - id.size() : 0;
    if (host_room < 8) host_room = std::min<std::size_t>(h.size(), 8);
    if (h.size() > host_room) h.resize(host_room);
    if (id.size() + h.size() > room) id.resize(room - h.size());
  }
  return std::string(k_app_prefix) + id + "@" + h + tail;
}

/// The run id, host and client pid back out of an application_name we set; nullopt otherwise.
std::optional<lock_holder> parse_application_name(std::string_view app) {
  if (app.substr(0, k_app_prefix.size()) != k_app_prefix) return std::nullopt;
  app.remove_prefix(k_app_prefix.size());
  auto at = app.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  auto colon = app.rfind(':');
  if (colon == std::string_view::npos || colon < at) return std::nullopt;
  lock_holder h;
  h.run_id = std::string(app.substr(0, at));
  h.host = std::string(app.substr(at + 1, colon - at - 1));
  try {
    h.client_pid = std::stoll(std::string(app.substr(colon + 1)));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return h;
}

/// pg_locks shows a bigint advisory key as classid (high 32 bits) and objid (low 32 bits),
/// with objsubid 1.
std::pair<std::string, std::string> key_halves(long long key) {
  auto u = static_cast<std::uint64_t>(key);
  return {std::to_string(u >> 32), std::to_string(u & 0xffffffffULL)};
}

const std::string& text(const result& r, std::size_t row, std::size_t col) { return r.rows.at(row).at(col).text; }

}  // namespace

long long advisory_key(std::string_view key) {
  // The first 8 bytes of SHA-256, big-endian, as a signed 64-bit: the same on every host,
  // compiler and PostgreSQL version (hashtext() and std::hash are not promised to be).
  std::string hex = sha256_hex(key).substr(0, 16);
  return static_cast<long long>(std::stoull(hex, nullptr, 16));
}

run_lock::run_lock(connection& conn, const std::string& key, const std::string& run_id, const std::string& runbook)
    : m_conn(conn), m_key(advisory_key(key)) {
  const std::string key_text = std::to_string(m_key);
  const std::string app = holder_application_name(run_id, host_name(), ::getpid());
  m_previous_application_name = text(m_conn.exec("WITH before AS (SELECT current_setting('application_name') AS name) "
                                                 "SELECT name, set_config('application_name', $1, false) FROM before",
                                                 {app}),
                                     0, 0);

  for (int attempt = 0; attempt < 3; ++attempt) {
    if (text(m_conn.exec("SELECT pg_try_advisory_lock($1::bigint)", {key_text}), 0, 0) == "t") return;

    auto [classid, objid] = key_halves(m_key);
    result holders = m_conn.exec(
        "SELECT l.pid, coalesce(a.application_name, ''), "
        "       coalesce(to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '') "
        "  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "   AND l.classid = $1::oid AND l.objid = $2::oid "
        "   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "   AND l.pid <> pg_backend_pid() "
        " LIMIT 1",
        {classid, objid});
    if (holders.rows.empty()) continue;  // released in the meantime: try again

    std::string app_name = text(holders, 0, 1);
    lock_holder h = parse_application_name(app_name).value_or(lock_holder{});
    h.pid = std::stoi(text(holders, 0, 0));
    h.since = text(holders, 0, 2);
    h.runbook = runbook;
    std::string who;
    if (!h.run_id.empty()) {
      who = "run " + h.run_id + " on " + h.host + " (pid " + std::to_string(h.client_pid) + ", backend " +
            std::to_string(h.pid) + ")";
    } else {
      who = "backend " + std::to_string(h.pid) + " (application_name '" + app_name + "')";
    }
    try {
      m_conn.exec("SELECT set_config('application_name', $1, false)", {m_previous_application_name});
    } catch (const std::exception&) {
      // only cosmetic: the refusal below is what matters
    }
    throw error(error_kind::locked, "runbook '" + runbook + "' is already running on this target: " + who +
                                        (h.since.empty() ? "" : " since " + h.since));
  }
  throw error(error_kind::locked, "runbook '" + runbook +
                                      "' is already running on this target: the lock is held, but its holder "
                                      "could not be identified");
}

run_lock::~run_lock() {
  try {
    if (m_conn.is_open())
      m_conn.exec("SELECT pg_advisory_unlock($1::bigint), set_config('application_name', $2, false)",
                  {std::to_string(m_key), m_previous_application_name});
  } catch (const std::exception&) {
    // The session is gone (and PostgreSQL released the lock with it), or it will be closed.
  }
}

}  // namespace rb::db
