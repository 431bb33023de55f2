// The streaming cursor: DECLARE ... NO SCROLL CURSOR, FETCH FORWARD n, CLOSE, in the
// connection's transaction or one of its own; and connection::stream on top of it.
#include "engine/db/cursor.hpp"

#include <algorithm>

#include "engine/db/connection_impl.hpp"

namespace rb::db {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string strip_trailing_semicolons(std::string_view sql) {
  while (!sql.empty() && (is_space(sql.back()) || sql.back() == ';')) sql.remove_suffix(1);
  return std::string(sql);
}

}  // namespace

struct cursor::state {
  state(connection& owner, connection::impl& session, std::string_view text, std::size_t nparams, std::size_t rows)
      : conn(owner), c(session), sql(text), rec(session, sql, nparams), batch(std::max<std::size_t>(rows, 1)) {}

  connection& conn;
  connection::impl& c;
  const std::string sql;
  connection::impl::record_scope rec;  // one audit record for the whole read
  const std::size_t batch;
  const std::string what = "stream rows";
  std::string name;   // the cursor's quoted name
  std::string fetch;  // FETCH FORWARD batch FROM name
  bool open = true;
  bool own = false;       // the cursor began the transaction it runs in
  bool declared = false;  // DECLARE succeeded and CLOSE has not been sent
  bool last_batch = false;
  pqxx::result rows;  // the batch being handed out
  pqxx::result::size_type next = 0;
  std::vector<column> columns;
  std::vector<field> row;
  long long delivered = 0;

  /// On the way out by a failure: end the transaction the cursor opened (ROLLBACK), else close
  /// the cursor. A destructor path too, so a foreign exception (a Lua error) runs it.
  void discard() noexcept {
    rows = pqxx::result();
    try {
      if (own) {
        own = false;
        if (c.session_ok() && c.tx_open && !c.tx_lost) c.do_rollback("ROLLBACK");
        c.forget_transaction();
      } else if (declared && c.session_ok() && !c.transaction_failed()) {
        declared = false;
        c.exec_simple("close a cursor", "CLOSE " + name, connection::impl::trip{.cleanup = true});
      }
    } catch (const std::exception&) {
      // the session is gone or the transaction failed: the cursor went with it
    }
    own = declared = false;
  }
};

cursor::cursor(connection& conn, std::string_view sql, const std::vector<param>& params, std::size_t batch)
    : m(std::make_unique<state>(conn, *conn.m, sql, params.size(), batch)) {
  state& s = *m;
  try {
    s.c.ensure_usable(s.what, s.sql);
    s.own = !s.c.tx_open;
    if (s.own)
      s.c.do_begin("BEGIN");
    else
      s.c.apply_settings();
    s.name = "\"rb_stream_" + std::to_string(++s.c.cursor_seq) + "\"";
    // The caller's SQL: it may SET anything, so the session counts as changed.
    s.c.exec_bound(s.what, "DECLARE " + s.name + " NO SCROLL CURSOR FOR " + strip_trailing_semicolons(s.sql), params,
                   true);
    s.declared = true;
    s.fetch = "FETCH FORWARD " + std::to_string(s.batch) + " FROM " + s.name;
  } catch (const std::exception& e) {
    s.open = false;
    s.discard();
    s.rec.fail(e);
    throw;
  }
}

cursor::~cursor() {
  if (m && m->open) {
    m->open = false;
    m->discard();
  }
  // the record, if nothing reported it, says "interrupted"
}

const std::vector<field>* cursor::next() {
  state& s = *m;
  if (!s.open) return nullptr;
  try {
    if (s.next >= s.rows.size()) {
      if (s.last_batch) {
        close();
        return nullptr;
      }
      s.rows = pqxx::result();
      s.c.ensure_usable(s.what, s.sql);
      s.rows = s.c.exec_simple(s.what, s.fetch, connection::impl::trip{.user_sql = true});
      s.next = 0;
      if (s.columns.empty()) {
        for (pqxx::row::size_type i = 0; i < s.rows.columns(); ++i)
          s.columns.push_back(column{s.rows.column_name(i), s.rows.column_type(i)});
      }
      if (s.rows.size() < s.batch) s.last_batch = true;
      if (s.rows.empty()) {
        close();
        return nullptr;
      }
    }
    const pqxx::row pr = s.rows[s.next++];
    s.row.resize(pr.size());
    std::size_t i = 0;
    for (const auto& f : pr) {
      field& out = s.row[i++];
      out.null = f.is_null();
      if (out.null)
        out.text.clear();
      else
        out.text.assign(f.c_str(), f.size());
    }
    ++s.delivered;
    return &s.row;
  } catch (const std::exception& e) {
    fail(e);
    throw;
  }
}

const std::vector<column>& cursor::columns() const { return m->columns; }

void cursor::close() {
  state& s = *m;
  if (!s.open) return;
  s.open = false;
  s.rows = pqxx::result();
  try {
    s.c.exec_simple("close a cursor", "CLOSE " + s.name);
    s.declared = false;
    if (s.own) {
      s.own = false;  // COMMIT ends it either way: never a ROLLBACK after it
      s.c.do_commit("COMMIT");
    }
    s.rec.ok(s.delivered);
  } catch (const std::exception& e) {
    s.discard();
    s.rec.fail(e);
    throw;
  }
}

void cursor::fail(const std::exception& e) noexcept {
  state& s = *m;
  if (!s.open) return;
  s.open = false;
  s.discard();
  try {
    s.rec.fail(e);
  } catch (const std::exception&) {
    // the audit sink's own failure: the caller's error is the one to raise
  }
}

void cursor::abandon() noexcept {
  state& s = *m;
  s.open = s.own = s.declared = false;
  s.rows = pqxx::result();
  s.rec.dismiss();
}

bool cursor::is_open() const noexcept { return m->open; }

long long cursor::delivered() const noexcept { return m->delivered; }

connection& cursor::source() const noexcept { return m->conn; }

void connection::stream(std::string_view sql, const std::vector<param>& params, std::size_t batch,
                        const std::function<bool(const std::vector<column>&, const std::vector<field>&)>& fn) {
  cursor rows(*this, sql, params, batch);
  try {
    while (const std::vector<field>* row = rows.next()) {
      if (!fn(rows.columns(), *row)) break;
    }
  } catch (const std::exception& e) {
    rows.fail(e);  // the callback's own (a failed fetch has closed the cursor already)
    throw;
  }
  rows.close();
}

}  // namespace rb::db
