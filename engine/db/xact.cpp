// A transaction's fate, asked of the server by its id.
#include "engine/db/xact.hpp"

#include "engine/db/sqlstate.hpp"

namespace rb::db {

std::string_view to_string(xact_fate fate) {
  switch (fate) {
    case xact_fate::committed: return "committed";
    case xact_fate::aborted: return "aborted";
    case xact_fate::in_progress: return "in progress";
    case xact_fate::unknown: break;
  }
  return "unknown";
}

std::string current_xact_id(connection& c) {
  result r = c.exec("select pg_current_xact_id()::text");
  return r.rows.at(0).at(0).text;
}

xact_fate xact_status(connection& c, const std::string& xid) {
  result r;
  try {
    r = c.exec("select pg_xact_status($1::xid8)", {xid});
  } catch (const sql_failure& e) {
    // 22023: "transaction ID ... is in the future": not one of this server's (another cluster,
    // or a replica promoted before the commit reached it).
    if (e.sqlstate() == "22023" || e.sqlstate() == "22P02") return xact_fate::unknown;
    throw;
  }
  const field& f = r.rows.at(0).at(0);
  if (f.null) return xact_fate::unknown;
  if (f.text == "committed") return xact_fate::committed;
  if (f.text == "aborted") return xact_fate::aborted;
  if (f.text == "in progress") return xact_fate::in_progress;
  return xact_fate::unknown;
}

}  // namespace rb::db
