// A connection's session settings: statement and lock timeouts, the target's settings
// (search_path ...), and RESET ALL between steps, applied lazily in one round trip.
#include <algorithm>

#include "engine/db/connection_impl.hpp"

namespace rb::db {
namespace {

/// E'...': the same meaning whatever standard_conforming_strings says.
std::string escaped_literal(std::string_view v) {
  std::string out = "E'";
  for (char c : v) {
    if (c == '\\' || c == '\'') out += c;
    out += c;
  }
  return out + "'";
}

}  // namespace

// Skipped in a failed transaction (the statement will fail anyway; ROLLBACK restores what we
// track).
void connection::impl::apply_settings() {
  const bool reset = reset_pending && dirty;
  if (reset_pending && !dirty) reset_pending = false;  // nothing ran since: nothing to undo
  std::string q = reset ? "RESET ALL; " : "";
  if (want_statement_timeout && (reset || want_statement_timeout != have.statement_timeout))
    q += "SET statement_timeout = " + std::to_string(*want_statement_timeout) + "; ";
  if (want_lock_timeout && (reset || want_lock_timeout != have.lock_timeout))
    q += "SET lock_timeout = " + std::to_string(*want_lock_timeout) + "; ";
  const bool extra = !want_settings.empty() && (reset || !have.extra);
  if (extra) {
    for (const auto& [name, value] : want_settings)
      q += "SELECT pg_catalog.set_config(" + escaped_literal(name) + ", " + escaped_literal(value) + ", false); ";
  }
  if (q.empty() || transaction_failed()) return;
  round_trip(extra ? "apply the session settings (" + settings_names() + ")" : "apply the session settings", q,
             trip{}, [&] { return work->exec(q); });
  if (reset) have = {};
  if (want_statement_timeout) have.statement_timeout = want_statement_timeout;
  if (want_lock_timeout) have.lock_timeout = want_lock_timeout;
  have.extra = have.extra || extra;
  if (reset) {
    reset_pending = false;
    dirty = false;
  }
}

std::string connection::impl::settings_names() const {
  std::string out;
  for (const auto& [name, value] : want_settings) out += (out.empty() ? "" : ", ") + name;
  return out;
}

void connection::reset_session() { m->reset_pending = true; }

void connection::set_session_settings(std::vector<std::pair<std::string, std::string>> settings) {
  m->want_settings = std::move(settings);
  m->have.extra = false;
}

void connection::set_statement_timeout(std::chrono::milliseconds t) {
  m->want_statement_timeout = std::max<long long>(0, t.count());
}

void connection::set_lock_timeout(std::chrono::milliseconds t) {
  m->want_lock_timeout = std::max<long long>(0, t.count());
}

}  // namespace rb::db
