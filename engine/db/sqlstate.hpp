// SQLSTATE codes mapped to the error classes runbooks match on ("unique_violation", "08*" ...).
#pragma once

#include <string>
#include <string_view>

#include "engine/error.hpp"

namespace rb::db {

/// The class name for a SQLSTATE: unique_violation (23505), foreign_key_violation (23503),
/// not_null_violation (23502), check_violation (23514), undefined_table (42P01),
/// undefined_column (42703), undefined_function (42883), invalid_column_reference (42P10),
/// duplicate_column (42701), duplicate_table (42P07), duplicate_object (42710),
/// syntax_error (42601), insufficient_privilege (42501), serialization_failure (40001),
/// deadlock (40P01), active_sql_transaction (25001), invalid_transaction_termination (2D000), lock_not_available (55P03), query_canceled (57014), admin_shutdown
/// (57P01) and every 08xxx as "connection", raise_exception (P0001), else "sql_error".
std::string class_for_sqlstate(std::string_view sqlstate);

/// The engine error kind for a SQLSTATE: connection for 08* and 57P0x, timeout for 57014
/// caused by statement_timeout/lock_timeout, sql otherwise.
error_kind kind_for_sqlstate(std::string_view sqlstate);

/// A database failure with everything PostgreSQL said about it. Thrown by connection.
class sql_failure : public error {
 public:
  sql_failure(error_kind kind, std::string message, std::string sqlstate, std::string detail, std::string hint,
              std::string statement)
      : error(kind, message), m_sqlstate(std::move(sqlstate)), m_detail(std::move(detail)), m_hint(std::move(hint)),
        m_statement(std::move(statement)) {}
  const std::string& sqlstate() const { return m_sqlstate; }
  /// The class runbooks match on; every lost session is "connection", whatever SQLSTATE
  /// (08xxx, 57P01 admin_shutdown ...) the server gave on its way out.
  std::string klass() const {
    if (kind() == error_kind::in_doubt) return "in_doubt";
    if (kind() == error_kind::connection) return "connection";
    return class_for_sqlstate(m_sqlstate);
  }
  const std::string& detail() const { return m_detail; }
  const std::string& hint() const { return m_hint; }
  const std::string& statement() const { return m_statement; }
  /// The objects the server named in its error fields (PG_DIAG_SCHEMA_NAME ... CONSTRAINT_NAME):
  /// which constraint a unique_violation broke, whatever language the message is in.
  struct object_names {
    std::string schema, table, column, constraint;
  };
  const object_names& names() const { return m_names; }
  sql_failure&& with_names(object_names n) && {
    m_names = std::move(n);
    return std::move(*this);
  }

 private:
  std::string m_sqlstate, m_detail, m_hint, m_statement;
  object_names m_names;
};

}  // namespace rb::db
