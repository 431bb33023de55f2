// PostgreSQL's messages as the connection reads them: an error result's fields, libpq's
// formatted text (for notices and libpq's own errors), and a notice as the audit shows it.
#pragma once

#include <libpq-fe.h>

#include <string>
#include <string_view>

#include "engine/db/sqlstate.hpp"

namespace rb::db::detail {

/// A message as libpq formats it with PQERRORS_VERBOSE ("ERROR:  23505: primary\nDETAIL:  ...").
struct pg_message {
  std::string severity, sqlstate, primary, detail, hint, context, position;
  sql_failure::object_names names;
};

/// An error result's fields as the server sent them (PQresultErrorField): unlike the formatted
/// text, they do not depend on the server's lc_messages ("FEHLER:  ..." has no "ERROR:").
pg_message message_of(const PGresult* r);

/// A message as libpq formats it with PQERRORS_VERBOSE, split into its parts; a message of
/// libpq's own (no severity) is all `primary`, on one line.
pg_message parse_message(std::string_view text);

/// Lines of a libpq message joined with single spaces ("server closed ...\n\tThis probably ...").
std::string one_line(std::string_view s);

/// A notice as the audit and take_notices() show it: the text, with its severity when it is not
/// a plain NOTICE/INFO ("WARNING: disk is filling").
std::string notice_text(const pg_message& m);

}  // namespace rb::db::detail
