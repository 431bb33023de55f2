// Typed runbook parameters: `--param k=v` strings checked against the declared specs.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/run/model.hpp"

namespace rb::run {

/// Splits "k=v" arguments into a map. Throws rb::error(bad_param) on a malformed one.
std::map<std::string, std::string> parse_param_args(const std::vector<std::string>& args);

/// Converts and checks the given values against the specs, fills defaults, and returns a JSON
/// object of typed values (integer, number, boolean, string; durations as seconds). Throws
/// rb::error(bad_param) naming the parameter, the value and what was expected.
json resolve_params(const runbook_def& book, const std::map<std::string, std::string>& given);

/// Converts one value as the spec's type requires; throws rb::error(bad_param).
json convert_param(const runbook_def& book, const param_spec& spec, const std::string& text);

}  // namespace rb::run
