// One PostgreSQL connection (libpqxx): bound parameters, typed columns, streaming through a
// cursor (engine/db/cursor), notices, cancel, timeouts, reconnect, and a record of every
// statement for the audit.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/db/dsn.hpp"  // redact_dsn, dsn_password: what callers of a connection use
#include "engine/db/sqlstate.hpp"

namespace rb::db {

class cursor;

/// A parameter value: text, or NULL.
using param = std::optional<std::string>;

struct column {
  std::string name;
  unsigned oid = 0;  ///< the column's type OID (bool 16, int8 20, int4 23, numeric 1700, json 114, jsonb 3802...)
};

/// One field: its text (PostgreSQL's text output format) or NULL.
struct field {
  bool null = true;
  std::string text;
};

/// The rows a statement returned, and how many it affected.
struct result {
  std::vector<column> columns;
  std::vector<std::vector<field>> rows;
  long long affected = 0;  ///< rows inserted/updated/deleted, or returned by a SELECT
};

/// What the audit records of one statement: never the parameter values.
struct statement_record {
  std::string sql;
  std::size_t params = 0;
  long long rows = 0;
  std::chrono::milliseconds duration{0};
  std::string sqlstate;                ///< empty on success
  std::string error;                   ///< message on failure
  std::vector<std::string> notices;    ///< RAISE NOTICE / WARNING text emitted by this statement
};

/// How a transaction ended, as observed.
enum class tx_end { committed, rolled_back, in_doubt };
/// "committed", "rolled_back", "in_doubt".
std::string_view to_string(tx_end e);

/// Options of a connection.
struct connection_options {
  std::string dsn;                       ///< libpq keyword/value string or postgresql:// URI
  std::string name = "database";         ///< how messages name it ("target 'primary'")
  std::string application_name = "runbook";
};

/// One session. Not thread-safe, except cancel(). Errors are thrown as sql_failure with the
/// SQLSTATE, detail and hint; a lost connection is error_kind::connection; a COMMIT whose
/// outcome is unknown is error_kind::in_doubt. The password never appears in any message.
class connection {
 public:
  /// Connects; throws sql_failure(connection) naming the target, with the password redacted.
  explicit connection(connection_options opts);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Runs one statement with bound parameters ($1, $2 ...) and returns all its rows.
  result exec(std::string_view sql, const std::vector<param>& params = {});

  /// Streams a query's rows through a server-side cursor (a db::cursor), `batch` rows at a
  /// time, so memory stays bounded whatever the row count. `fn` returns false to stop early.
  /// Opens (and closes) a transaction when none is open.
  void stream(std::string_view sql, const std::vector<param>& params, std::size_t batch,
              const std::function<bool(const std::vector<column>&, const std::vector<field>&)>& fn);

  /// Runs a script (migration files, DO $$ ... $$ blocks) as one simple-protocol query: the
  /// server parses the whole text first and runs it as one implicit transaction, unless the
  /// text has its own BEGIN/COMMIT. No parameters. A failure names `source` (the file the text
  /// came from; "the script" when empty) and the line of the failing statement, or of the
  /// server's error position. A failed script that had begun its own transaction leaves none
  /// behind: it is rolled back, and the message says so.
  void script(std::string_view sql, std::string_view source = {});

  /// BEGIN / COMMIT / ROLLBACK, SAVEPOINT / RELEASE / ROLLBACK TO, tracked so the connection
  /// knows whether a transaction is open. commit() throws in_doubt when the connection is
  /// lost during COMMIT.
  void begin();
  void commit();
  void rollback();
  void savepoint(std::string_view name);
  void release(std::string_view name);
  void rollback_to(std::string_view name);
  bool in_transaction() const;
  /// True when the open transaction was begun by the caller's own SQL (BEGIN in exec() or
  /// script()) rather than by begin(). A transaction begin() opened belongs to its caller:
  /// exec() and script() refuse SQL that would begin, end or prepare it (SQLSTATE 2D000,
  /// before anything runs), and if SQL ends it all the same, that SQL fails and
  /// ended_by_sql() says how it ended.
  bool transaction_begun_by_sql() const;
  /// The server's word (PQtransactionStatus, no round trip): a transaction is open and failed.
  bool transaction_failed() const;
  /// How the caller's SQL ended the transaction begin() had opened, when it did; cleared by
  /// the next begin().
  std::optional<tx_end> ended_by_sql() const;

  /// Asks for a known session state before the next statement: when any SQL of the caller
  /// ran since the last reset (it may have SET anything), `RESET ALL` and the timeouts and
  /// session settings below go out first, in one round trip. Called at every step's start.
  void reset_session();
  /// Settings (name, value) applied with set_config() on connect and after every reset (a
  /// target's `settings`, e.g. search_path).
  void set_session_settings(std::vector<std::pair<std::string, std::string>> settings);

  /// Session timeouts for the statements that follow (0 = none). Applied lazily, once.
  void set_statement_timeout(std::chrono::milliseconds t);
  void set_lock_timeout(std::chrono::milliseconds t);

  /// Cancels the statement running now (safe to call from another thread).
  void cancel();
  /// Cancels any statement still running when `deadline` passes (a watchdog thread); nullopt
  /// disarms it. The cancelled statement fails with error_kind::timeout.
  void set_deadline(std::optional<std::chrono::steady_clock::time_point> deadline);

  /// RAISE NOTICE text received since the last call.
  std::vector<std::string> take_notices();

  /// Called after every statement (success or failure) with what the audit needs.
  void on_statement(std::function<void(const statement_record&)> fn);

  bool is_open() const;
  /// Drops and re-establishes the session (after a connection error). Any open transaction is
  /// gone: it is never assumed committed.
  void reconnect();
  int backend_pid() const;
  const std::string& name() const;
  /// The DSN with the password replaced by "***".
  std::string redacted_dsn() const;

 private:
  friend class cursor;  // reads through the session's round trips and transaction tracking
  struct impl;          // engine/db/connection_impl.hpp
  std::unique_ptr<impl> m;
};

}  // namespace rb::db
