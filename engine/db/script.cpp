// A connection's scripts: migration files and DO blocks sent as one simple-protocol query, with
// every statement's result read so a failure names its file and line.
#include <cstdlib>

#include "engine/db/connection_impl.hpp"
#include "engine/db/sql_text.hpp"

namespace rb::db {
namespace {

bool is_utf8(PGconn* h) {
  const char* enc = PQparameterStatus(h, "client_encoding");
  return enc && std::string_view(enc) == "UTF8";
}

}  // namespace

std::string connection::impl::script_location(std::string_view sql, std::string_view source, std::size_t offset) {
  int line = line_at(sql, offset);
  if (source.empty()) return "line " + std::to_string(line) + " of the script";
  return std::string(source) + ":" + std::to_string(line);
}

/// One simple-protocol query on libpq itself (libpqxx keeps only the last result and none of an
/// error's fields): every statement's result, its command tag, and for a failure the server's
/// position or the statement it reached, so the message can name the line.
connection::impl::script_result connection::impl::run_script(const std::string& sql, std::string_view source) {
  PGconn* h = raw();
  if (!PQsendQuery(h, sql.c_str())) {
    std::string msg = PQerrorMessage(h);
    if (PQstatus(h) != CONNECTION_OK) throw pqxx::broken_connection(msg);
    throw pqxx::failure(msg);
  }
  using result_ptr = std::unique_ptr<PGresult, decltype(&PQclear)>;
  result_ptr error(nullptr, PQclear);
  std::size_t completed = 0;  // statements that ran to completion
  script_result out;
  while (PGresult* next = PQgetResult(h)) {
    result_ptr res(next, PQclear);
    switch (PQresultStatus(res.get())) {
      case PGRES_COMMAND_OK:
      case PGRES_TUPLES_OK:
        ++completed;
        note_tag(PQcmdStatus(res.get()));
        out.rows = PQnfields(res.get()) > 0 ? PQntuples(res.get()) : std::atoll(PQcmdTuples(res.get()));
        break;
      case PGRES_COPY_IN:  // no data to give: fail it (a later result says so)
        PQputCopyEnd(h, "a runbook script cannot feed COPY ... FROM STDIN");
        break;
      case PGRES_COPY_OUT: {
        char* buf = nullptr;
        while (PQgetCopyData(h, &buf, 0) > 0) PQfreemem(buf);
        break;
      }
      case PGRES_FATAL_ERROR:
      case PGRES_BAD_RESPONSE:
        if (!error) error = std::move(res);
        break;
      default:
        break;
    }
  }
  if (error) {
    std::string msg = PQresultErrorMessage(error.get());
    if (PQstatus(h) != CONNECTION_OK) throw pqxx::broken_connection(msg);
    const char* sqlstate = PQresultErrorField(error.get(), PG_DIAG_SQLSTATE);
    const char* position = PQresultErrorField(error.get(), PG_DIAG_STATEMENT_POSITION);
    std::optional<std::size_t> at;
    if (position && std::atol(position) > 0) {
      at = offset_of_position(sql, std::atol(position), is_utf8(h));
    } else {
      // No position (a runtime error): the statement after the last one that completed.
      auto statements = split_statements(sql);
      if (completed < statements.size()) at = statements[completed].begin;
    }
    if (at && (!source.empty() || sql.find('\n') != std::string::npos))
      failure_location = script_location(sql, source, *at);
    throw pqxx::sql_error(msg, sql, sqlstate);
  }
  if (PQstatus(h) != CONNECTION_OK) throw pqxx::broken_connection(PQerrorMessage(h));
  return out;
}

void connection::script(std::string_view sql, std::string_view source) {
  impl::record_scope rec(*m, sql, 0);
  try {
    const std::string what = source.empty() ? "run a script" : "run script " + std::string(source);
    m->ensure_usable(what, sql);
    m->refuse_transaction_control(what, sql, true, source);
    m->apply_settings();
    const bool had_transaction = m->tx_open;
    const std::string text(sql);
    impl::script_result r;
    try {
      r = m->round_trip(what, text, impl::trip{.user_sql = true}, [&] { return m->run_script(text, source); });
    } catch (const sql_failure& e) {
      // The script began its own transaction and failed in it: roll it back, so the session is
      // not left refusing every statement (25P02) until someone does.
      if (had_transaction || !m->tx_open || !m->tx_by_sql || !m->session_ok()) throw;
      m->do_rollback("ROLLBACK");
      throw sql_failure(e.kind(),
                        std::string(e.what()) +
                            "\nThe transaction the script had begun (its own BEGIN) was rolled back.",
                        e.sqlstate(), e.detail(), e.hint(), e.statement())
          .with_names(e.names());
    }
    rec.ok(r.rows);
  } catch (const std::exception& e) {
    rec.fail(e);
    throw;
  }
}

}  // namespace rb::db
