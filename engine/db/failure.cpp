// A connection's errors: structured sql_failure from the server's fields (SQLSTATE, detail,
// hint, object names) and SQLSTATE classes, a lost connection, and the kinds of a cancel.
#include "engine/db/connection_impl.hpp"

namespace rb::db {

using detail::one_line;
using detail::parse_message;

std::string connection::impl::scrub(std::string text) const {
  for (const auto& f : secrets) {
    for (std::size_t at = text.find(f); at != std::string::npos; at = text.find(f, at + 3))
      text.replace(at, f.size(), "***");
  }
  return text;
}

sql_failure connection::impl::failure(error_kind kind, const std::string& what, const pg_message& m,
                                      std::string sqlstate, std::string_view statement) const {
  std::string msg = "unable to " + what + " on " + opts.name + ": " + m.primary;
  if (!sqlstate.empty()) msg += " (SQLSTATE " + sqlstate + ")";
  if (!m.detail.empty()) msg += "\nDETAIL: " + m.detail;
  if (!m.hint.empty()) msg += "\nHINT: " + m.hint;
  if (!m.context.empty()) msg += "\nCONTEXT: " + m.context;
  if (!m.position.empty()) msg += "\n" + m.position;
  return sql_failure(kind, scrub(msg), std::move(sqlstate), scrub(m.detail), scrub(m.hint), std::string(statement))
      .with_names(m.names);
}

sql_failure connection::impl::failure(error_kind kind, const std::string& what, std::string text,
                                      std::string sqlstate, std::string_view statement) const {
  pg_message m;
  m.primary = std::move(text);
  return failure(kind, what, m, std::move(sqlstate), statement);
}

sql_failure connection::impl::lost(const std::string& what, std::string_view sql, on_loss loss,
                                   const char* pqxx_text) {
  bool had_tx = tx_open && !tx_lost;
  // Read whatever the server said last (its FATAL arrives as a "notice").
  if (PGconn* h = raw(); h && !fatal) {
    PQconsumeInput(h);
    PQisBusy(h);
  }
  pg_message m;
  if (fatal) {
    m = *fatal;
  } else if (PGconn* h = raw(); h && *PQerrorMessage(h)) {
    m = parse_message(PQerrorMessage(h));
  } else {
    m.primary = one_line(pqxx_text);
  }
  std::string sqlstate = m.sqlstate.empty() || m.sqlstate.substr(0, 2) == "XX" ? "08006" : m.sqlstate;
  if (loss == on_loss::in_doubt) {
    forget_transaction();
    have = {};
    m.primary = "the connection was lost during COMMIT (" + m.primary +
                "): the transaction may or may not have been committed; check before retrying";
    return failure(error_kind::in_doubt, what, m, "08007", sql);
  }
  session_lost();
  m.primary = "lost the connection: " + m.primary;
  if (had_tx) m.primary += "; its open transaction was not committed";
  return failure(error_kind::connection, what, m, sqlstate, sql);
}

sql_failure connection::impl::statement_failed(const std::string& what, std::string_view sql, const char* text,
                                               const std::string& reported_sqlstate, cancel_flags fl,
                                               std::chrono::milliseconds took) {
  pg_message m = parse_message(text);
  if (last_error) {  // the server's fields: the text's DETAIL/HINT are lost in another language
    std::string position = m.severity.empty() ? std::string() : m.position;
    m = *last_error;
    m.position = std::move(position);
  }
  std::string sqlstate = reported_sqlstate.empty() ? m.sqlstate : reported_sqlstate;
  if (m.primary.empty()) m.primary = one_line(text);
  if (!failure_location.empty()) m.primary = failure_location + ": " + m.primary;
  error_kind kind = kind_for_sqlstate(sqlstate);
  auto near = [&](const std::optional<long long>& limit) {
    return limit && *limit > 0 && took.count() * 10 >= *limit * 9;
  };
  if (sqlstate == "57014") {
    if (fl.by_deadline) {
      kind = error_kind::timeout;
      m.primary = "the statement was cancelled: its deadline passed while it ran";
    } else if (fl.by_user) {
      kind = error_kind::cancelled;
    } else if (m.primary.find("statement timeout") != std::string::npos || near(have.statement_timeout)) {
      kind = error_kind::timeout;
    } else {
      kind = error_kind::sql;  // someone else's pg_cancel_backend
    }
  } else if (sqlstate == "55P03") {
    bool lock_timeout = m.primary.find("lock timeout") != std::string::npos || near(have.lock_timeout);
    kind = lock_timeout ? error_kind::timeout : error_kind::sql;
  }
  return failure(kind, what, m, sqlstate, sql);
}

}  // namespace rb::db
