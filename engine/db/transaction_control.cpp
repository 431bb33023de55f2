// A connection's transaction: BEGIN / COMMIT / ROLLBACK and savepoints, the state the server
// reports after the caller's own SQL, and refusing SQL that would end a transaction begin() opened.
#include <cstdio>

#include "engine/db/connection_impl.hpp"
#include "engine/db/sql_text.hpp"

namespace rb::db {

/// Savepoint names as quoted identifiers. PostgreSQL truncates identifiers to 63 bytes (with a
/// NOTICE), so longer names keep a prefix cut on a character boundary plus a hash of the whole,
/// which keeps distinct long names distinct.
std::string detail::savepoint_identifier(std::string_view name) {
  std::string id(name);
  if (id.size() > 63) {
    std::size_t cut = 50;
    while (cut > 0 && (static_cast<unsigned char>(id[cut]) & 0xC0) == 0x80) --cut;
    unsigned long long h = 1469598103934665603ULL;  // FNV-1a: stable, and enough to tell names apart
    for (unsigned char c : name) h = (h ^ c) * 1099511628211ULL;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", h);
    id = id.substr(0, cut) + "~" + std::string(hex, 12);
  }
  std::string out = "\"";
  for (char c : id) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// ---- tracking ----------------------------------------------------------------------------

void connection::impl::forget_transaction() {
  tx_open = false;
  tx_lost = false;
  tx_by_sql = false;
  levels.clear();
}

void connection::impl::session_lost() {
  if (tx_open) tx_lost = true;
  levels.clear();
  have = {};
}

bool connection::impl::sync_transaction_state() {
  dirty = true;  // it may have SET anything
  PGconn* h = raw();
  if (!h || tx_lost) return false;
  switch (PQtransactionStatus(h)) {
    case PQTRANS_IDLE:
      if (tx_open) {
        bool callers = !tx_by_sql;
        forget_transaction();
        have = {};
        if (callers) {
          // A COMMIT/ROLLBACK tag tells how; without one (PREPARE TRANSACTION, exec()) nobody can.
          ended_by_sql = seen_end.value_or(tx_end::in_doubt);
          return true;
        }
      }
      break;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
      if (!tx_open) {  // opened by the SQL
        tx_open = true;
        tx_by_sql = true;
        levels = {tx_level{"", session_settings{}}};
      }
      break;
    default:
      break;
  }
  return false;
}

void connection::impl::note_tag(const char* tag) {
  if (!tag) return;
  std::string_view t(tag);
  if (t == "COMMIT") seen_end = tx_end::committed;
  else if (t == "ROLLBACK") seen_end = tx_end::rolled_back;
  else if (t == "PREPARE TRANSACTION") seen_end = tx_end::in_doubt;
}

sql_failure connection::impl::ended_transaction(const std::string& what, std::string_view sql) const {
  pg_message m;
  m.primary = "the SQL ended the transaction that was open around it (a transaction = true phase, or "
              "db:transaction): ";
  switch (ended_by_sql.value_or(tx_end::in_doubt)) {
    case tx_end::committed: m.primary += "its work up to that point was COMMITTED"; break;
    case tx_end::rolled_back: m.primary += "its work was rolled back"; break;
    case tx_end::in_doubt: m.primary += "whether its work was committed is not known; check the database"; break;
  }
  m.hint = transaction_control_hint();
  return failure(error_kind::sql, what, m, "2D000", sql);
}

std::string connection::impl::transaction_control_hint() {
  return "Leave BEGIN/COMMIT/ROLLBACK out: the surrounding transaction commits or rolls back this work. A file "
         "that must run with its own BEGIN/COMMIT belongs in a phase without transaction = true.";
}

void connection::impl::refuse_transaction_control(const std::string& what, std::string_view sql, bool is_script,
                                                  std::string_view source) const {
  if (!tx_open || tx_by_sql || tx_lost) return;
  std::optional<control_statement> found;
  if (is_script) {
    found = find_transaction_control(sql);
  } else if (auto verb = transaction_control(sql)) {
    found = control_statement{*verb, 0};
  }
  if (!found) return;
  bool opens = found->verb == "BEGIN" || found->verb == "START TRANSACTION";
  pg_message m;
  m.primary = found->verb + (opens ? " would begin a transaction inside" : " would end") +
              " the transaction that is open around this SQL (a transaction = true phase, or db:transaction); "
              "nothing was run";
  if (is_script) m.primary = script_location(sql, source, found->offset) + ": " + m.primary;
  m.hint = transaction_control_hint();
  throw failure(error_kind::sql, what, m, "2D000", sql);
}

bool connection::impl::transaction_failed() const {
  PGconn* h = raw();
  return h && PQtransactionStatus(h) == PQTRANS_INERROR;
}

// ---- BEGIN, COMMIT, ROLLBACK (also a cursor's own transaction) ------------------------------

void connection::impl::do_begin(const std::string& sql) {
  if (!transaction_failed()) apply_settings();  // outside the transaction: ROLLBACK keeps it
  session_settings before = have;
  exec_simple("begin a transaction", sql);
  tx_open = true;
  tx_lost = false;
  tx_by_sql = false;
  ended_by_sql.reset();
  levels = {tx_level{"", before}};
}

void connection::impl::do_commit(const std::string& sql) {
  const std::string what = "commit the transaction";
  // A session that died while idle in the transaction (terminated, server restart) has
  // already told us so, or closed the socket: then COMMIT was never sent and the outcome is
  // known — rolled back. Only a connection lost after COMMIT went out leaves it in doubt.
  if (PGconn* h = raw(); h && !fatal) {
    for (int i = 0; i < 2 && PQstatus(h) == CONNECTION_OK; ++i) {
      PQconsumeInput(h);
      PQisBusy(h);
    }
  }
  if (!session_ok() || fatal) {
    pg_message m;
    m.primary = "the connection was lost before COMMIT was sent" +
                (fatal ? " (" + fatal->primary + ")" : std::string()) + "; the transaction was rolled back";
    forget_transaction();
    have = {};
    throw failure(error_kind::connection, what, m, fatal && !fatal->sqlstate.empty() ? fatal->sqlstate : "08006",
                  sql);
  }
  bool failed_before = transaction_failed();
  session_settings at_begin = levels.empty() ? session_settings{} : levels.front().saved;
  try {
    exec_simple(what, sql, trip{.loss = on_loss::in_doubt});
  } catch (const sql_failure& e) {
    // An error at COMMIT (a deferred constraint) ended it: rolled back. Refused before it was
    // sent (the deadline had passed), the transaction is still open for ROLLBACK.
    PGconn* h = raw();
    if (e.kind() != error_kind::in_doubt && h && PQtransactionStatus(h) == PQTRANS_IDLE) {
      forget_transaction();
      have = at_begin;
      dirty = true;
    }
    throw;
  }
  forget_transaction();
  if (failed_before) {
    have = at_begin;
    dirty = true;
    throw failure(error_kind::sql, what,
                  "the transaction had failed (an earlier statement raised an error), so PostgreSQL rolled it "
                  "back instead",
                  "25P02", sql);
  }
}

void connection::impl::do_rollback(const std::string& sql) {
  session_settings at_begin = levels.empty() ? session_settings{} : levels.front().saved;
  if (tx_lost || !session_ok()) {  // the server has rolled it back already
    forget_transaction();
    return;
  }
  try {
    exec_simple("roll back the transaction", sql, trip{.cleanup = true});
  } catch (const sql_failure& e) {
    if (e.kind() == error_kind::connection) {  // rolled back by the server all the same
      forget_transaction();
      return;
    }
    if (PGconn* h = raw(); h && PQtransactionStatus(h) == PQTRANS_IDLE) forget_transaction();
    throw;
  }
  forget_transaction();
  have = at_begin;
  dirty = true;  // a RESET ALL made inside was undone with the rest
}

// ---- the public calls -----------------------------------------------------------------------

void connection::begin() {
  const std::string sql = "BEGIN";
  m->control(sql, [&] {
    const std::string what = "begin a transaction";
    if (m->tx_lost)
      throw m->failure(error_kind::connection, what,
                       "the previous transaction was lost with the connection; roll it back first", "08006", sql);
    if (m->tx_open)
      throw error(error_kind::usage, "unable to begin a transaction on " + m->opts.name +
                                         ": one is already open (use a savepoint to nest)");
    m->ensure_usable(what, sql);
    m->do_begin(sql);
  });
}

void connection::commit() {
  const std::string sql = "COMMIT";
  m->control(sql, [&] {
    const std::string what = "commit the transaction";
    if (m->tx_lost) {
      m->forget_transaction();
      throw m->failure(error_kind::connection, what,
                       "the connection was lost before COMMIT; the transaction was rolled back", "08006", sql);
    }
    if (!m->tx_open) throw error(error_kind::usage, "unable to commit on " + m->opts.name + ": no transaction is open");
    m->do_commit(sql);
  });
}

void connection::rollback() {
  if (!m->tx_open && !m->tx_lost) return;  // idempotent, and safe in cleanup paths
  const std::string sql = "ROLLBACK";
  m->control(sql, [&] { m->do_rollback(sql); });
}

void connection::savepoint(std::string_view name) {
  const std::string sql = "SAVEPOINT " + detail::savepoint_identifier(name);
  m->control(sql, [&] {
    const std::string what = "create savepoint '" + std::string(name) + "'";
    if (!m->tx_open)
      throw error(error_kind::usage, "unable to " + what + " on " + m->opts.name + ": no transaction is open");
    m->ensure_usable(what, sql);
    impl::session_settings before = m->have;
    m->exec_simple(what, sql);
    m->levels.push_back(impl::tx_level{std::string(name), before});
  });
}

void connection::release(std::string_view name) {
  const std::string sql = "RELEASE SAVEPOINT " + detail::savepoint_identifier(name);
  m->control(sql, [&] {
    const std::string what = "release savepoint '" + std::string(name) + "'";
    if (!m->tx_open)
      throw error(error_kind::usage, "unable to " + what + " on " + m->opts.name + ": no transaction is open");
    m->ensure_usable(what, sql);
    m->exec_simple(what, sql, impl::trip{.cleanup = true});
    // Released with every savepoint made after it; what they SET stays, in the level around.
    for (std::size_t i = m->levels.size(); i-- > 1;) {
      if (m->levels[i].name == name) {
        m->levels.resize(i);
        break;
      }
    }
  });
}

void connection::rollback_to(std::string_view name) {
  const std::string sql = "ROLLBACK TO SAVEPOINT " + detail::savepoint_identifier(name);
  m->control(sql, [&] {
    const std::string what = "roll back to savepoint '" + std::string(name) + "'";
    if (!m->tx_open)
      throw error(error_kind::usage, "unable to " + what + " on " + m->opts.name + ": no transaction is open");
    m->ensure_usable(what, sql);
    m->exec_simple(what, sql, impl::trip{.cleanup = true});
    // The savepoint stays; later ones are gone, and so is any SET made since it.
    for (std::size_t i = m->levels.size(); i-- > 1;) {
      if (m->levels[i].name == name) {
        m->have = m->levels[i].saved;
        m->dirty = true;  // a RESET ALL made since was undone with the rest
        m->levels.resize(i + 1);
        return;
      }
    }
    m->have = {};  // a savepoint we did not make: we cannot tell what it undid
    m->dirty = true;
  });
}

}  // namespace rb::db
