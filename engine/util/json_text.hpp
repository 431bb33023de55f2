// JSON text the engine writes (audit records, --json output): always valid UTF-8.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace rb {

/// `j` as JSON text. Runbooks choose names and values freely, so a string may hold bytes that
/// are not UTF-8: they become U+FFFD instead of making dump() throw.
inline std::string json_text(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace rb
