// One PostgreSQL connection (libpqxx 6.4), the session itself: connect and reconnect, notices,
// exec() with bound parameters and typed columns, and a record of every statement for the
// audit. Errors are built in failure.cpp, the deadline in deadline.cpp, SET in
// session_settings.cpp, prepared statements in statement_cache.cpp, BEGIN/COMMIT and savepoints
// in transaction_control.cpp, scripts in script.cpp, streaming in cursor.cpp.
#include "engine/db/connection.hpp"

#include "engine/db/connection_impl.hpp"

namespace rb::db {

using detail::capturing_connect;
using detail::k_max_notices;
using detail::one_line;

thread_local capturing_connect* capturing_connect::t_last = nullptr;

connection::impl::impl(connection_options o) : opts(std::move(o)), secrets(dsn_secrets(opts.dsn)) {}

connection::impl::~impl() {
  {
    std::lock_guard lk(mu);
    stopping = true;
  }
  cv.notify_all();
  if (watchdog.joinable()) watchdog.join();
  close();
}

void connection::impl::on_notice(const char* msg) {
  pg_message m = detail::parse_message(msg ? msg : "");
  // The server's goodbye (pg_terminate_backend, shutdown) arrives as an "error" outside any
  // query: keep it to explain the lost connection rather than listing it as a notice.
  if (m.severity == "FATAL" || m.severity == "PANIC") {
    fatal = std::move(m);
    return;
  }
  std::string text = detail::notice_text(m);
  if (text.empty()) return;
  if (pending_notices.size() < k_max_notices)
    pending_notices.push_back(text);
  else
    ++dropped_notices;
  if (statement_notices.size() < k_max_notices) statement_notices.push_back(std::move(text));
}

/// libpq calls this for every result it makes, libpqxx's included (which keeps an error's
/// PGresult to itself): the first error of a round trip is kept, with its fields.
int connection::impl::on_pq_event(PGEventId id, void* info, void* pass) noexcept {
  if (id != PGEVT_RESULTCREATE) return 1;
  auto* created = static_cast<PGEventResultCreate*>(info);
  auto* self = static_cast<impl*>(pass);
  if (self->last_error || PQresultStatus(created->result) != PGRES_FATAL_ERROR) return 1;
  try {
    pg_message m = detail::message_of(created->result);
    if (!m.primary.empty()) self->last_error = std::move(m);
  } catch (const std::exception&) {
    // out of memory copying the fields: the formatted text is still there
  }
  return 1;
}

void connection::impl::open() {
  fatal.reset();
  std::unique_ptr<detail::pq_connection> c;
  capturing_connect::t_last = nullptr;
  try {
    parse_dsn(opts.dsn);  // libpq's complaint, with no word of a secret in it
  } catch (const error& e) {
    throw sql_failure(error_kind::connection, "unable to connect to " + opts.name + ": " + e.what(), "08001", "",
                      "", "");
  }
  try {
    c = std::make_unique<detail::pq_connection>(opts.application_name.empty() ? opts.dsn : dsn_with(opts.dsn, "application_name", opts.application_name));
  } catch (const std::exception& e) {
    std::string msg = "unable to connect to " + opts.name + " (" + redact_dsn(opts.dsn) + "): " + one_line(e.what());
    throw sql_failure(error_kind::connection, scrub(msg), "08001", "", "", "");
  }
  policy = capturing_connect::t_last;
  if (!policy || !policy->raw())
    throw failure(error_kind::internal, "connect", "libpqxx did not hand over its libpq connection", "", "");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  // Never reconnect behind our back: a new session would silently run the rest of a
  // transaction's statements in autocommit. reconnect() is explicit.
  c->inhibit_reactivation(true);
#pragma GCC diagnostic pop
  c->set_verbosity(pqxx::connection_base::verbose);

  struct notice_sink final : pqxx::errorhandler {
    notice_sink(pqxx::connection_base& c, impl* m) : errorhandler(c), m_impl(m) {}
    bool operator()(const char msg[]) noexcept override {
      try {
        m_impl->on_notice(msg);
      } catch (const std::exception&) {
        // out of memory while recording a notice: drop it
      }
      return false;
    }
    impl* m_impl;
  };
  if (!PQregisterEventProc(policy->raw(), &connection::impl::on_pq_event, "runbook", this))
    throw failure(error_kind::internal, "connect", "unable to watch libpq's results (PQregisterEventProc)", "", "");
  sink = std::make_unique<notice_sink>(*c, this);
  work = std::make_unique<pqxx::nontransaction>(*c, "runbook");
  pq = std::move(c);
  std::lock_guard lk(mu);
  cancel_handle = PQgetCancel(policy->raw());
}

void connection::impl::close() noexcept {
  {
    std::lock_guard lk(mu);
    if (cancel_handle) PQfreeCancel(cancel_handle);
    cancel_handle = nullptr;
  }
  work.reset();
  sink.reset();
  pq.reset();
  policy = nullptr;
  prepared.clear();  // prepared statements live and die with their session
}

void connection::impl::ensure_usable(const std::string& what, std::string_view sql) {
  if (tx_lost)
    throw failure(error_kind::connection, what,
                  "the open transaction was lost with the connection (the server rolled it back); roll it "
                  "back here before running more SQL",
                  "08006", sql);
  if (!session_ok()) {
    std::string why = fatal ? fatal->primary : std::string("the connection is closed");
    throw failure(error_kind::connection, what, why + " (reconnect first)",
                  fatal && !fatal->sqlstate.empty() ? fatal->sqlstate : "08003", sql);
  }
}

// ---- audit -------------------------------------------------------------------------------

connection::impl::record_scope::record_scope(impl& m, std::string_view sql, std::size_t params)
    : m_impl(m), m_sql(sql), m_params(params) {
  m.statement_notices.clear();
  m_t0 = steady::now();
}

connection::impl::record_scope::~record_scope() {
  if (m_done) return;
  try {
    report(0, "", "interrupted");
  } catch (const std::exception&) {
    // unwinding already; the audit sink's own failure cannot be raised from here
  }
}

void connection::impl::record_scope::fail(const std::exception& e) {
  if (m_done) return;
  const auto* sf = dynamic_cast<const sql_failure*>(&e);
  report(0, sf ? sf->sqlstate() : "", m_impl.scrub(e.what()));
}

void connection::impl::record_scope::report(long long rows, std::string sqlstate, std::string error) {
  m_done = true;
  if (!m_impl.on_stmt) {
    m_impl.statement_notices.clear();
    return;
  }
  statement_record r;
  r.sql = std::string(m_sql);
  r.params = m_params;
  r.rows = rows;
  r.duration = detail::since(m_t0);
  r.sqlstate = std::move(sqlstate);
  r.error = std::move(error);
  r.notices = std::move(m_impl.statement_notices);
  m_impl.statement_notices.clear();
  m_impl.on_stmt(r);
}

namespace {

result to_result(const pqxx::result& r) {
  result out;
  const auto ncols = r.columns();
  out.columns.reserve(ncols);
  for (pqxx::row::size_type c = 0; c < ncols; ++c) out.columns.push_back(column{r.column_name(c), r.column_type(c)});
  out.rows.reserve(r.size());
  for (const auto& row : r) {
    std::vector<field> fields;
    fields.reserve(ncols);
    for (const auto& f : row) {
      if (f.is_null())
        fields.push_back(field{});
      else
        fields.push_back(field{false, std::string(f.c_str(), f.size())});
    }
    out.rows.push_back(std::move(fields));
  }
  out.affected = ncols > 0 ? static_cast<long long>(r.size()) : static_cast<long long>(r.affected_rows());
  return out;
}

}  // namespace

connection::connection(connection_options opts) : m(std::make_unique<impl>(std::move(opts))) { m->open(); }

connection::~connection() = default;

result connection::exec(std::string_view sql, const std::vector<param>& params) {
  impl::record_scope rec(*m, sql, params.size());
  try {
    const std::string what = "run SQL";
    m->ensure_usable(what, sql);
    m->refuse_transaction_control(what, sql, false, {});
    m->apply_settings();
    result out = to_result(m->exec_bound(what, std::string(sql), params, true));
    rec.ok(out.affected);
    return out;
  } catch (const std::exception& e) {
    rec.fail(e);
    throw;
  }
}

bool connection::in_transaction() const { return m->tx_open; }

bool connection::transaction_begun_by_sql() const { return m->tx_open && m->tx_by_sql; }

bool connection::transaction_failed() const { return m->transaction_failed(); }

std::optional<tx_end> connection::ended_by_sql() const { return m->ended_by_sql; }

std::string_view to_string(tx_end e) {
  switch (e) {
    case tx_end::committed: return "committed";
    case tx_end::rolled_back: return "rolled_back";
    case tx_end::in_doubt: return "in_doubt";
  }
  return "in_doubt";
}

std::vector<std::string> connection::take_notices() {
  std::vector<std::string> out = std::move(m->pending_notices);
  m->pending_notices.clear();
  if (m->dropped_notices) {
    out.push_back("(" + std::to_string(m->dropped_notices) + " more notices were dropped)");
    m->dropped_notices = 0;
  }
  return out;
}

void connection::on_statement(std::function<void(const statement_record&)> fn) { m->on_stmt = std::move(fn); }

bool connection::is_open() const { return m->session_ok(); }

void connection::reconnect() {
  if (m->tx_open) m->tx_lost = true;
  m->levels.clear();
  m->have = {};
  m->dirty = m->reset_pending = false;  // a new session starts from its defaults
  m->close();
  m->open();
}

int connection::backend_pid() const { return m->pq ? m->pq->backendpid() : 0; }

const std::string& connection::name() const { return m->opts.name; }

std::string connection::redacted_dsn() const { return redact_dsn(m->opts.dsn); }

}  // namespace rb::db
