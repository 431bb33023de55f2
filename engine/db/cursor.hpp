// The streaming cursor: a query's rows read through a server-side cursor in batches, so memory
// stays bounded whatever the row count (connection::stream and the Lua db:rows use it).
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <string_view>
#include <vector>

#include "engine/db/connection.hpp"

namespace rb::db {

/// A server-side cursor (DECLARE ... NO SCROLL CURSOR) over one query, fetched `batch` rows at a
/// time. Inside the connection's open transaction it uses that one (and sees its uncommitted
/// work); otherwise it opens a transaction of its own, committed by close() and rolled back on
/// failure. The audit gets one statement record for the whole read (the query, its parameter
/// count, the rows delivered), when it ends. Not thread-safe; the connection must outlive the
/// cursor, or the cursor be abandon()ed first.
class cursor {
 public:
  /// Declares the cursor; throws sql_failure like connection::exec (the query's own errors
  /// included), leaving no transaction of its own behind.
  cursor(connection& c, std::string_view sql, const std::vector<param>& params, std::size_t batch = 1000);
  /// Closes what is still open (CLOSE, or ROLLBACK of its own transaction), never throwing.
  ~cursor();
  cursor(const cursor&) = delete;
  cursor& operator=(const cursor&) = delete;

  /// The next row, or null when there are no more (the cursor is then closed, as by close()).
  /// The row stays valid until the next call. A failure closes the cursor and throws.
  const std::vector<field>* next();
  /// The query's columns: known from the first fetch on.
  const std::vector<column>& columns() const;
  /// Ends the read: CLOSE, and COMMIT of the transaction the cursor opened (a transaction that
  /// failed meanwhile is rolled back instead). Idempotent; throws like any statement.
  void close();
  /// Ends the read because of the caller's own error `e`: recorded as the statement's error,
  /// and the cursor's own transaction rolled back. Never throws.
  void fail(const std::exception& e) noexcept;
  /// Forgets the cursor without a word to the server or the audit (its connection is gone).
  void abandon() noexcept;

  /// Still open: neither at its end, closed, failed nor abandoned.
  bool is_open() const noexcept;
  /// Rows handed out so far.
  long long delivered() const noexcept;
  /// The connection the cursor reads from.
  connection& source() const noexcept;

 private:
  struct state;
  std::unique_ptr<state> m;
};

}  // namespace rb::db
