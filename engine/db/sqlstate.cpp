// SQLSTATE codes mapped to the error classes runbooks match on ("unique_violation", "08*" ...).
#include "engine/db/sqlstate.hpp"

#include <array>

namespace rb::db {
namespace {

struct sqlstate_class {
  std::string_view sqlstate;
  std::string_view name;
};

// PostgreSQL's condition names (Appendix A of its manual) for the codes runbooks match on.
constexpr std::array<sqlstate_class, 32> k_classes{{
    {"23505", "unique_violation"},
    {"23503", "foreign_key_violation"},
    {"23502", "not_null_violation"},
    {"23514", "check_violation"},
    {"23P01", "exclusion_violation"},
    {"42P01", "undefined_table"},
    {"42703", "undefined_column"},
    {"42883", "undefined_function"},
    {"42P10", "invalid_column_reference"},
    {"42701", "duplicate_column"},
    {"42P07", "duplicate_table"},
    {"42710", "duplicate_object"},
    {"42601", "syntax_error"},
    {"42501", "insufficient_privilege"},
    {"42804", "datatype_mismatch"},
    {"40001", "serialization_failure"},
    {"40P01", "deadlock"},
    {"55P03", "lock_not_available"},
    {"57014", "query_canceled"},
    {"57P01", "admin_shutdown"},
    {"57P02", "crash_shutdown"},
    {"57P03", "cannot_connect_now"},
    {"P0001", "raise_exception"},
    {"22P02", "invalid_text_representation"},
    {"22012", "division_by_zero"},
    {"22001", "string_data_right_truncation"},
    {"25P02", "in_failed_sql_transaction"},
    {"25001", "active_sql_transaction"},
    {"2D000", "invalid_transaction_termination"},
    {"28P01", "invalid_password"},
    {"3D000", "invalid_catalog_name"},
    {"3F000", "invalid_schema_name"},
}};

}  // namespace

std::string class_for_sqlstate(std::string_view sqlstate) {
  if (sqlstate.size() == 5 && sqlstate.substr(0, 2) == "08") return "connection";
  for (const auto& c : k_classes)
    if (c.sqlstate == sqlstate) return std::string(c.name);
  return "sql_error";
}

error_kind kind_for_sqlstate(std::string_view sqlstate) {
  if (sqlstate.substr(0, 2) == "08") return error_kind::connection;
  if (sqlstate.size() == 5 && sqlstate.substr(0, 4) == "57P0") return error_kind::connection;
  // From the code alone 57014 is most often statement_timeout; connection refines it (a
  // cancel someone else sent is sql, our cancel() is cancelled, our deadline is timeout).
  if (sqlstate == "57014") return error_kind::timeout;
  return error_kind::sql;
}

}  // namespace rb::db
