// A transaction's fate, asked of the server by its id (pg_current_xact_id, pg_xact_status).
#pragma once

#include <string>
#include <string_view>

#include "engine/db/connection.hpp"

namespace rb::db {

/// What the server knows of a transaction.
enum class xact_fate {
  committed,
  aborted,      ///< rolled back, or its session died before COMMIT finished
  in_progress,  ///< still open: its COMMIT may be running now (a slow deferred trigger)
  unknown,      ///< too old to tell (NULL), or not a transaction of this server
};

/// pg_xact_status's word for it: "committed", "aborted", "in progress", "unknown".
std::string_view to_string(xact_fate fate);

/// The id of the transaction open on `c` (an xid8, as text), assigning one if it has none yet,
/// so that its fate can be asked later from another session. Needs PostgreSQL 13.
std::string current_xact_id(connection& c);

/// What became of transaction `xid` (from current_xact_id), asked on `c` outside any
/// transaction. Throws the connection's errors when the server cannot be asked.
xact_fate xact_status(connection& c, const std::string& xid);

}  // namespace rb::db
