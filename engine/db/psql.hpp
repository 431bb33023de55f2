// Runs SQL through the real psql (ctx.db:psql): COPY FROM stdin data, \i and \ir, \set and :'var'.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/db/dsn.hpp"  // libpq_env
#include "engine/shell/process.hpp"

namespace rb::db {

/// One psql invocation.
struct psql_request {
  std::string dsn;
  /// The runbook's directory: psql runs there, and `file` is relative to it.
  std::filesystem::path base_dir;
  /// A script file, relative to base_dir (as the runbook wrote it; psql's messages name it so).
  std::optional<std::filesystem::path> file;
  /// SQL text, fed on stdin, when there is no file.
  std::string sql;
  /// psql variables (\set name 'value'), set through stdin, never argv.
  std::vector<std::pair<std::string, std::string>> vars;
  /// psql --single-transaction: BEGIN before, COMMIT after, ROLLBACK on the first error.
  bool single_transaction = false;
  /// The step's statement_timeout and lock_timeout for psql's session (0 = none); the script
  /// can still SET its own.
  std::chrono::milliseconds statement_timeout{0}, lock_timeout{0};
  /// The psql program to run (db::pg_bin("psql") when empty).
  std::filesystem::path program;
};

/// Where a script file may be: relative, and inside `base_dir` once symbolic links are
/// resolved. Returns the path to hand psql (relative, normalised). Throws rb::error(usage)
/// naming the file when it is absolute, escapes base_dir or does not exist.
std::filesystem::path resolve_script(const std::filesystem::path& base_dir, const std::string& file);

/// The process to run: `psql -X -v ON_ERROR_STOP=1 [-1] -f -` in base_dir with the DSN as PG*
/// environment variables (PGOPTIONS carries the step's statement_timeout and lock_timeout),
/// and on stdin a preamble (\set of each var, VERBOSITY verbose for
/// SQLSTATEs) followed by `\i 'file'` or the SQL text. The backend checks every second that
/// psql is still there, so killing psql at the deadline also ends the statement it ran.
shell::process_options psql_process(const psql_request& req);

/// Lines of the preamble psql_process puts before SQL text (to give psql's <stdin> line
/// numbers back as lines of the text).
int psql_preamble_lines(const psql_request& req);

/// Throws when psql did not succeed: rb::error(timeout | cancelled) when it was killed,
/// db::sql_failure with psql's own "psql:FILE:LINE: ERROR:  ..." line (and the SQLSTATE,
/// detail and hint) for a script error, rb::error(connection) when it could not connect, and
/// rb::error(shell) for anything else. `what` names the call ("ctx.db:psql('x.sql')").
void check_psql_result(const psql_request& req, const shell::process_result& r, const std::string& what,
                       std::chrono::milliseconds timeout);

}  // namespace rb::db
