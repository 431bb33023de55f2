// The runbook model: names of enums, error descriptions.
#include "engine/run/model.hpp"

#include "engine/db/sqlstate.hpp"

namespace rb::run {

json step_error::to_json() const {
  json j = {{"kind", std::string(kind_name(kind))}, {"message", message}};
  if (!klass.empty()) j["class"] = klass;
  if (!sqlstate.empty()) j["sqlstate"] = sqlstate;
  if (!detail.empty()) j["detail"] = detail;
  if (!hint.empty()) j["hint"] = hint;
  if (!statement.empty()) j["statement"] = statement;
  if (!source.empty()) j["source"] = source;
  if (line > 0) j["line"] = line;
  return j;
}

std::string step_error::describe() const {
  std::string out;
  switch (kind) {
    case error_kind::check_failed: out = "check failed: "; break;
    case error_kind::timeout: out = "timed out: "; break;
    case error_kind::memory: out = "out of memory: "; break;
    case error_kind::sandbox: out = "denied by the sandbox: "; break;
    case error_kind::not_confirmed: out = "not confirmed: "; break;
    default:
      if (!klass.empty() && klass != "error") out = klass + ": ";
      break;
  }
  out += message;
  if (!sqlstate.empty() && message.find(sqlstate) == std::string::npos) out += " [SQLSTATE " + sqlstate + "]";
  if (!detail.empty() && message.find(detail) == std::string::npos) out += " DETAIL: " + detail;
  if (!hint.empty() && message.find(hint) == std::string::npos) out += " HINT: " + hint;
  if (!source.empty() && message.find(source) == std::string::npos)
    out += " (" + source + (line > 0 ? ":" + std::to_string(line) : "") + ")";
  return out;
}

std::string_view to_string(param_type t) {
  switch (t) {
    case param_type::string: return "string";
    case param_type::integer: return "integer";
    case param_type::number: return "number";
    case param_type::boolean: return "boolean";
    case param_type::enumeration: return "enum";
    case param_type::duration: return "duration";
  }
  return "string";
}

std::string_view to_string(on_error e) {
  switch (e) {
    case on_error::rollback: return "rollback";
    case on_error::abort: return "abort";
    case on_error::cont: return "continue";
  }
  return "rollback";
}

std::optional<on_error> on_error_from(std::string_view s) {
  if (s == "rollback") return on_error::rollback;
  if (s == "abort") return on_error::abort;
  if (s == "continue") return on_error::cont;
  return std::nullopt;
}

step_error step_error_from(const std::exception& e) {
  step_error err;
  err.message = e.what();
  if (const auto* sf = dynamic_cast<const db::sql_failure*>(&e)) {
    err.kind = sf->kind();
    err.klass = sf->klass();
    err.sqlstate = sf->sqlstate();
    err.detail = sf->detail();
    err.hint = sf->hint();
    err.statement = sf->statement();
  } else if (const auto* re = dynamic_cast<const error*>(&e)) {
    err.kind = re->kind();
    err.klass = std::string(kind_name(re->kind()));
  } else {
    err.kind = error_kind::internal;
    err.klass = "internal";
  }
  return err;
}

std::string describe_step(const runbook_def& book, const phase_def& phase, const step_def& step) {
  return "step '" + step.name + "' of phase '" + phase.name + "' of runbook '" + book.name + "' (" +
         step.where.str() + ")";
}

}  // namespace rb::run
