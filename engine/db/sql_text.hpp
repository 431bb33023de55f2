// Reading SQL text as the server splits it: statements, transaction control, lines.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rb::db {

/// One statement of a script, as byte offsets: `begin` is its first token, `end` its `;` (or
/// the end of the text).
struct sql_statement {
  std::size_t begin = 0, end = 0;
};

/// The statements of a script in the order the simple query protocol runs them: split at
/// top-level semicolons, never inside quotes ('...', E'...', "...", $tag$...$tag$), comments
/// (--, nested /* */), parentheses, or the BEGIN ... END body of a CREATE FUNCTION/PROCEDURE
/// (psql's rule). Empty statements are left out, as the server skips them.
std::vector<sql_statement> split_statements(std::string_view sql);

/// A statement that begins, ends or prepares a transaction: its verb as written in upper case
/// ("BEGIN", "START TRANSACTION", "COMMIT", "END", "ROLLBACK", "ABORT", "PREPARE TRANSACTION"),
/// and where it starts. Not ROLLBACK TO / RELEASE / SAVEPOINT (they keep the transaction), nor
/// COMMIT/ROLLBACK PREPARED (they act on another, prepared transaction).
struct control_statement {
  std::string verb;
  std::size_t offset = 0;
};

/// The verb if `statement` (one statement's text) is transaction control.
std::optional<std::string> transaction_control(std::string_view statement);

/// The first top-level transaction-control statement of a script, if any.
std::optional<control_statement> find_transaction_control(std::string_view sql);

/// The 1-based line holding byte `offset` (\n, \r\n and a lone \r end a line, as libpq counts).
int line_at(std::string_view text, std::size_t offset);

/// The byte offset of the server's 1-based character position `pos` (PG_DIAG_STATEMENT_POSITION)
/// in `text`: characters are UTF-8 code points when `utf8`, else bytes.
std::size_t offset_of_position(std::string_view text, long pos, bool utf8);

}  // namespace rb::db
