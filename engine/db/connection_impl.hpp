// The inside of a connection, shared by the files that implement it (connection, failure,
// deadline, session_settings, statement_cache, transaction_control, script, cursor): libpq
// under libpqxx, the transaction as tracked, the deadline's state, and one round trip.
#pragma once

#include <libpq-events.h>
#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>
#include <type_traits>  // std::invoke_result_t
#include <utility>

#include "engine/db/connection.hpp"
#include "engine/db/pg_message.hpp"
#include "engine/db/statement_cache.hpp"

namespace rb::db {
namespace detail {

using steady = std::chrono::steady_clock;

inline std::chrono::milliseconds since(steady::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0);
}

/// libpqxx 6.4's own connect policy, remembering the PGconn it makes. libpqxx exposes no handle,
/// and we need one for three things it does not offer: PQtransactionStatus (so SQL that says
/// BEGIN/COMMIT itself cannot desynchronise our tracking), a PGcancel made on the owning thread
/// (PQcancel on it is safe from any thread; PQgetCancel, which cancel_query() calls, is not), and
/// PQerrorMessage when libpqxx reports a lost connection as "Could not obtain client encoding".
class capturing_connect : public pqxx::connect_direct {
 public:
  explicit capturing_connect(const std::string& opts) : connect_direct(opts) { t_last = this; }
  handle do_startconnect(handle orig) override {
    m_handle = connect_direct::do_startconnect(orig);
    return m_handle;
  }
  handle do_dropconnect(handle orig) noexcept override {
    m_handle = connect_direct::do_dropconnect(orig);
    return m_handle;
  }
  handle do_disconnect(handle orig) noexcept override {
    m_handle = connect_direct::do_disconnect(orig);
    return m_handle;
  }
  PGconn* raw() const noexcept { return m_handle; }

  /// The policy the last connection made on this thread was built with (basic_connection_base
  /// keeps its policy private; the constructor runs on our thread just before we ask).
  static thread_local capturing_connect* t_last;

 private:
  PGconn* m_handle = nullptr;
};

using pq_connection = pqxx::basic_connection_base<capturing_connect>;

/// The session's timeouts as far as we know them; nullopt means "unknown": re-apply.
struct session_settings {
  std::optional<long long> statement_timeout, lock_timeout;
  bool extra = false;  // the session settings (set_session_settings) are in force
};

/// A transaction level: BEGIN (first) or a savepoint, with the settings it started with, which
/// ROLLBACK / ROLLBACK TO restore (a SET made inside is transactional).
struct tx_level {
  std::string name;  // empty for BEGIN
  session_settings saved;
};

/// What the watchdog or cancel() did to the statement in flight.
struct cancel_flags {
  bool by_deadline = false;
  bool by_user = false;
};

/// How a lost connection is reported for a given operation.
enum class on_loss { connection, in_doubt };

/// How one round trip is run.
struct trip {
  on_loss loss = on_loss::connection;
  /// The caller's SQL, which may itself open or end a transaction.
  bool user_sql = false;
  /// ROLLBACK, ROLLBACK TO, RELEASE, CLOSE: recovery must work after a deadline, so these are
  /// neither refused nor cancelled by it.
  bool cleanup = false;
};

constexpr std::size_t k_max_notices = 10'000;

/// Savepoint names as quoted identifiers, long ones shortened so distinct names stay distinct.
std::string savepoint_identifier(std::string_view name);

}  // namespace detail

struct connection::impl {
  using steady = detail::steady;
  using session_settings = detail::session_settings;
  using tx_level = detail::tx_level;
  using cancel_flags = detail::cancel_flags;
  using on_loss = detail::on_loss;
  using trip = detail::trip;
  using pg_message = detail::pg_message;

  connection_options opts;
  std::vector<std::string> secrets;  // dsn_secrets(): to scrub from messages

  std::unique_ptr<detail::pq_connection> pq;
  detail::capturing_connect* policy = nullptr;
  std::unique_ptr<pqxx::errorhandler> sink;
  std::unique_ptr<pqxx::nontransaction> work;

  // The caller's transaction, as begin()/commit()/... and PQtransactionStatus tell us.
  bool tx_open = false;
  bool tx_lost = false;    // open, but its session is gone: it was rolled back by the server
  bool tx_by_sql = false;  // begun by the caller's SQL (its own BEGIN), not by begin()
  std::optional<tx_end> ended_by_sql;  // how the caller's SQL ended a begin() transaction
  std::optional<tx_end> seen_end;      // COMMIT/ROLLBACK command tags of the SQL in flight
  std::vector<tx_level> levels;
  session_settings have;
  std::optional<long long> want_statement_timeout, want_lock_timeout;
  std::vector<std::pair<std::string, std::string>> want_settings;
  bool dirty = false;          // the caller's SQL ran since the last RESET ALL
  bool reset_pending = false;  // reset_session() asked for RESET ALL before the next statement
  std::string failure_location;  // "x.sql:3" for the script error being thrown

  std::vector<std::string> pending_notices, statement_notices;
  std::size_t dropped_notices = 0;
  std::optional<pg_message> fatal;  // why the server is closing the session, when it said so
  std::optional<pg_message> last_error;  // the first error result of the round trip (on_pq_event)

  std::function<void(const statement_record&)> on_stmt;
  unsigned long cursor_seq = 0;

  detail::statement_cache prepared;

  // Cancel and deadline: shared with the watchdog thread and cancel() callers.
  std::mutex mu;
  std::condition_variable cv;
  PGcancel* cancel_handle = nullptr;
  bool busy = false;
  bool busy_cleanup = false;  // the statement in flight is exempt from the deadline
  bool cancel_sent = false;
  cancel_flags flags;
  std::optional<steady::time_point> deadline;
  bool stopping = false;
  std::thread watchdog;

  explicit impl(connection_options o);
  ~impl();
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  PGconn* raw() const { return policy ? policy->raw() : nullptr; }
  bool session_ok() const { return pq && pq->is_open(); }

  // -- the session (connection.cpp) --
  void open();
  void close() noexcept;
  void on_notice(const char* msg);
  static int on_pq_event(PGEventId id, void* info, void* pass) noexcept;
  /// The connection can take a statement: open, and not inside a transaction that was lost.
  void ensure_usable(const std::string& what, std::string_view sql);

  // -- errors (failure.cpp) --
  std::string scrub(std::string text) const;
  sql_failure failure(error_kind kind, const std::string& what, const pg_message& m, std::string sqlstate,
                      std::string_view statement) const;
  sql_failure failure(error_kind kind, const std::string& what, std::string text, std::string sqlstate,
                      std::string_view statement) const;
  /// The connection was lost during a round trip: connection, or in_doubt during COMMIT.
  sql_failure lost(const std::string& what, std::string_view sql, on_loss loss, const char* pqxx_text);
  /// The server refused the statement: its fields, the SQLSTATE's kind, and whether a cancel
  /// was a deadline, the user, a timeout setting or someone else.
  sql_failure statement_failed(const std::string& what, std::string_view sql, const char* text,
                               const std::string& reported_sqlstate, cancel_flags fl, std::chrono::milliseconds took);

  // -- the transaction (transaction_control.cpp) --
  void forget_transaction();
  /// The session is gone: so is its transaction (never committed) and what we knew of it.
  void session_lost();
  /// After the caller's SQL: agrees with libpq on whether a transaction is open. Returns true
  /// when the SQL ended a transaction begin() had opened (ended_by_sql says how).
  bool sync_transaction_state();
  /// Remembers what a command tag says about the transaction ("COMMIT", "ROLLBACK").
  void note_tag(const char* tag);
  /// The caller's SQL ended the transaction begin() opened: the statement fails, saying what
  /// became of the work.
  sql_failure ended_transaction(const std::string& what, std::string_view sql) const;
  static std::string transaction_control_hint();
  /// Refuses, before it runs, SQL that would begin, end or prepare the transaction begin()
  /// opened (a migration file's own BEGIN/COMMIT inside a transaction = true phase).
  void refuse_transaction_control(const std::string& what, std::string_view sql, bool is_script,
                                  std::string_view source) const;
  bool transaction_failed() const;
  void do_begin(const std::string& sql);
  void do_commit(const std::string& sql);
  void do_rollback(const std::string& sql);

  // -- session settings and timeouts (session_settings.cpp) --
  /// SET what the caller asked for, when the session does not have it already; after
  /// reset_session(), first RESET ALL, all in one round trip.
  void apply_settings();
  std::string settings_names() const;

  // -- scripts (script.cpp) --
  /// What a script returned: the rows (or rows affected) of its last statement.
  struct script_result {
    long long rows = 0;
  };
  script_result run_script(const std::string& sql, std::string_view source);
  /// Where a script's statement is: "x.sql:3", or "line 3 of the script" for text.
  static std::string script_location(std::string_view sql, std::string_view source, std::size_t offset);

  // -- statements (statement_cache.cpp for exec_bound) --
  pqxx::result exec_simple(const std::string& what, const std::string& sql, trip t = {}) {
    return round_trip(what, sql, t, [&] { return work->exec(sql); });
  }
  /// A statement with bound parameters; the caller's DML goes through the statement cache.
  pqxx::result exec_bound(const std::string& what, const std::string& sql, const std::vector<param>& params,
                          bool user_sql);

  // -- deadline (deadline.cpp) --
  /// The watchdog thread: cancels the statement in flight when the deadline passes.
  void watch();
  /// PQcancel on the handle made by the owning thread: safe from any thread. Holding `mu` keeps
  /// the handle alive and the statement in flight the same one.
  void send_cancel_locked();

  /// Marks a statement in flight for cancel() and the watchdog; refuses to start one once the
  /// deadline has passed.
  class busy_scope {
   public:
    busy_scope(impl& m, const std::string& what, std::string_view sql, bool cleanup);
    ~busy_scope() { finish(); }
    busy_scope(const busy_scope&) = delete;
    busy_scope& operator=(const busy_scope&) = delete;
    cancel_flags finish();

   private:
    impl& m_impl;
  };

  /// One round trip. Converts libpqxx's exceptions into sql_failure with the right kind.
  template <class F>
  std::invoke_result_t<F&> round_trip(const std::string& what, std::string_view sql, trip t, F&& f) {
    const on_loss loss = t.loss;
    const bool user_sql = t.user_sql;
    busy_scope busy(*this, what, sql, t.cleanup);
    auto t0 = steady::now();
    if (user_sql) seen_end.reset();
    failure_location.clear();
    last_error.reset();
    try {
      auto r = f();
      busy.finish();
      if (user_sql && sync_transaction_state()) throw ended_transaction(what, sql);
      return r;
    } catch (const pqxx::in_doubt_error& e) {
      busy.finish();
      session_lost();
      throw lost(what, sql, on_loss::in_doubt, e.what());
    } catch (const pqxx::broken_connection& e) {
      busy.finish();
      throw lost(what, sql, loss, e.what());
    } catch (const pqxx::sql_error& e) {
      cancel_flags fl = busy.finish();
      if (!session_ok()) throw lost(what, sql, loss, e.what());
      if (user_sql) sync_transaction_state();
      throw statement_failed(what, sql, e.what(), e.sqlstate(), fl, detail::since(t0));
    } catch (const pqxx::failure& e) {
      // Also the server's errors libpqxx 6.4 gives classes without a SQLSTATE of their own
      // (serialization_failure, deadlock_detected, statement_completion_unknown): the
      // verbose message carries it.
      cancel_flags fl = busy.finish();
      if (!session_ok()) throw lost(what, sql, loss, e.what());
      if (user_sql) sync_transaction_state();
      throw statement_failed(what, sql, e.what(), "", fl, detail::since(t0));
    } catch (const std::logic_error& e) {  // libpqxx usage_error/internal_error: our bug
      busy.finish();
      throw failure(error_kind::internal, what, detail::one_line(e.what()), "", sql);
    }
  }

  // -- audit (connection.cpp) --

  /// One statement's record, reported exactly once.
  class record_scope {
   public:
    record_scope(impl& m, std::string_view sql, std::size_t params);
    ~record_scope();
    record_scope(const record_scope&) = delete;
    record_scope& operator=(const record_scope&) = delete;
    void ok(long long rows) {
      if (!m_done) report(rows, "", "");
    }
    /// After ok() this does nothing: the exception is then the callback's own, and the
    /// statement did succeed.
    void fail(const std::exception& e);
    /// Reports nothing, ever (the connection is gone).
    void dismiss() noexcept { m_done = true; }

   private:
    void report(long long rows, std::string sqlstate, std::string error);
    impl& m_impl;
    std::string_view m_sql;
    std::size_t m_params;
    steady::time_point m_t0;
    bool m_done = false;
  };

  /// A transaction-control statement, recorded for the audit.
  template <class F>
  void control(const std::string& sql, F&& f) {
    record_scope rec(*this, sql, 0);
    try {
      f();
    } catch (const std::exception& e) {
      rec.fail(e);
      throw;
    }
    rec.ok(0);
  }
};

}  // namespace rb::db
