// Connection strings (keyword/value and postgresql:// URIs), read by libpq's own parser.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rb::db {

/// One setting of a connection string, as PQconninfoParse reads it.
struct dsn_setting {
  std::string keyword, value;
  std::string envvar;  ///< PGHOST ..., empty when libpq has none for it
};

/// The settings `dsn` gives, in libpq's order. Throws a usage error with libpq's complaint when
/// it cannot be read; the complaint never echoes a word of the string that could be a secret.
std::vector<dsn_setting> parse_dsn(std::string_view dsn);

/// The password in a DSN, if it has one (so it can be registered as a secret); nullopt for an
/// unparsable DSN too.
std::optional<std::string> dsn_password(std::string_view dsn);

/// The forms of the DSN's secrets (password, sslpassword: as given and percent-encoded) to
/// scrub from messages, longest first.
std::vector<std::string> dsn_secrets(std::string_view dsn);

/// `dsn` for messages: unchanged when it holds no secret, else its settings as keyword/value
/// with password and sslpassword shown as "***"; "***" when it cannot be read.
std::string redact_dsn(std::string_view dsn);

/// `dsn` as keyword/value without its password (for a tool that gets it through PGPASSWORD).
std::string dsn_without_password(std::string_view dsn);

/// `dsn` with one more setting (a later keyword or URI parameter wins over an earlier one):
/// appended as a quoted keyword=value, or as a percent-encoded URI parameter.
std::string dsn_with(std::string_view dsn, std::string_view keyword, std::string_view value);

/// The DSN as libpq environment variables (PGHOST, PGPORT, PGDATABASE, PGPASSWORD ...).
std::map<std::string, std::string> libpq_env(std::string_view dsn);

/// Overwrites, in place, the NUL-terminated DSN `text` (an element of the process's argv, which
/// /proc/PID/cmdline shows to every local user) with as much of redact_dsn(text) as fits,
/// padded with NULs. Returns true when it held a secret (or could not be read).
bool redact_dsn_in_place(char* text);

}  // namespace rb::db
