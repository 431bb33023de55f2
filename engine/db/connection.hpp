// One PostgreSQL connection (libpqxx): bound parameters, typed columns, streaming through a
// cursor, notices, cancel, timeouts, reconnect, and a record of every statement for the audit.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/db/sqlstate.hpp"

namespace rb::db {

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

  /// Streams a query's rows through a server-side cursor, `batch` rows at a time, so memory
  /// stays bounded whatever the row count. `fn` returns false to stop early. Opens (and
  /// closes) a transaction when none is open.
  void stream(std::string_view sql, const std::vector<param>& params, std::size_t batch,
              const std::function<bool(const std::vector<column>&, const std::vector<field>&)>& fn);

  /// Runs a multi-statement script (migration files, DO $$ ... $$ blocks) with the simple
  /// query protocol. No parameters.
  void script(std::string_view sql);

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
  struct impl;
  std::unique_ptr<impl> m;
};

/// `dsn` with any password (password=..., or postgresql://user:PASS@...) replaced by "***".
std::string redact_dsn(std::string_view dsn);
/// The password in a DSN, if it has one (so it can be registered as a secret).
std::optional<std::string> dsn_password(std::string_view dsn);
/// Overwrites, in place, the password in the NUL-terminated DSN `text` (an element of the
/// process's argv, which /proc/PID/cmdline shows to every local user): the text becomes
/// redact_dsn(text), padded with NULs. Returns true when there was a password.
bool redact_dsn_in_place(char* text);

}  // namespace rb::db
