// The error table: each kind's stable name and exit code, declared once.
#include "engine/error.hpp"

#include <array>

namespace rb {
namespace {

struct kind_info {
  error_kind kind;
  std::string_view name;
  int exit_code;
};

constexpr std::array<kind_info, 19> k_kinds{{
    {error_kind::usage, "usage", exit_codes::usage},
    {error_kind::bad_runbook, "bad_runbook", exit_codes::usage},
    {error_kind::bad_param, "bad_param", exit_codes::usage},
    {error_kind::step_failed, "step_failed", exit_codes::failed},
    {error_kind::check_failed, "check_failed", exit_codes::failed},
    {error_kind::timeout, "timeout", exit_codes::failed},
    {error_kind::memory, "memory", exit_codes::failed},
    {error_kind::sandbox, "sandbox", exit_codes::failed},
    {error_kind::sql, "sql", exit_codes::failed},
    {error_kind::connection, "connection", exit_codes::failed},
    {error_kind::in_doubt, "in_doubt", exit_codes::failed},
    {error_kind::shell, "shell", exit_codes::failed},
    {error_kind::not_confirmed, "not_confirmed", exit_codes::failed},
    {error_kind::rollback_failed, "rollback_failed", exit_codes::rollback_failed},
    {error_kind::locked, "locked", exit_codes::locked},
    {error_kind::cancelled, "cancelled", exit_codes::cancelled},
    {error_kind::audit, "audit", exit_codes::failed},
    {error_kind::io, "io", exit_codes::failed},
    {error_kind::internal, "internal", exit_codes::failed},
}};

const kind_info& info(error_kind kind) {
  for (const auto& k : k_kinds)
    if (k.kind == kind) return k;
  return k_kinds.back();
}

}  // namespace

std::string_view kind_name(error_kind kind) { return info(kind).name; }

std::optional<error_kind> kind_from_name(std::string_view name) {
  for (const auto& k : k_kinds)
    if (k.name == name) return k.kind;
  return std::nullopt;
}

int exit_code(error_kind kind) { return info(kind).exit_code; }

}  // namespace rb
