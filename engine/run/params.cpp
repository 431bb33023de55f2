// Typed runbook parameters.
#include "engine/run/params.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "engine/util/duration.hpp"
#include "engine/util/text.hpp"

namespace rb::run {
namespace {

[[noreturn]] void bad(const runbook_def& book, const std::string& msg) {
  throw error(error_kind::bad_param, "runbook '" + book.name + "': " + msg);
}

}  // namespace

std::map<std::string, std::string> parse_param_args(const std::vector<std::string>& args) {
  std::map<std::string, std::string> out;
  for (const auto& a : args) {
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0)
      throw error(error_kind::bad_param, "--param '" + a + "' is not of the form name=value");
    std::string key = a.substr(0, eq);
    if (out.count(key)) throw error(error_kind::bad_param, "--param '" + key + "' is given twice");
    out[key] = a.substr(eq + 1);
  }
  return out;
}

json convert_param(const runbook_def& book, const param_spec& spec, const std::string& text) {
  auto expected = [&](const std::string& what) {
    bad(book, "parameter '" + spec.name + "' must be " + what + ", not '" + text + "'");
  };
  switch (spec.type) {
    case param_type::string:
      return text;
    case param_type::integer: {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || errno == ERANGE) expected("an integer");
      return v;
    }
    case param_type::number: {
      errno = 0;
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) expected("a number");
      return v;
    }
    case param_type::boolean:
      if (text == "true" || text == "yes" || text == "on" || text == "1") return true;
      if (text == "false" || text == "no" || text == "off" || text == "0") return false;
      expected("true or false");
      break;
    case param_type::enumeration:
      for (const auto& v : spec.values)
        if (v == text) return text;
      expected("one of " + join(spec.values, ", ") + did_you_mean(text, spec.values));
      break;
    case param_type::duration: {
      std::chrono::milliseconds d{};
      if (!try_parse_duration(text, d)) expected("a duration like 30s, 5m or 1h");
      return static_cast<double>(d.count()) / 1000.0;
    }
  }
  return text;
}

json resolve_params(const runbook_def& book, const std::map<std::string, std::string>& given) {
  std::vector<std::string> names;
  for (const auto& p : book.params) names.push_back(p.name);
  for (const auto& [k, v] : given) {
    bool known = false;
    for (const auto& p : book.params) known = known || p.name == k;
    if (!known) {
      std::string hint = names.empty() ? " (it takes no parameters)"
                                       : did_you_mean(k, names) + "; its parameters are: " + join(names, ", ");
      bad(book, "unknown parameter '" + k + "'" + hint);
    }
  }
  json out = json::object();
  for (const auto& p : book.params) {
    auto it = given.find(p.name);
    if (it != given.end()) {
      out[p.name] = convert_param(book, p, it->second);
    } else if (p.default_text) {
      out[p.name] = convert_param(book, p, *p.default_text);
    } else if (p.required) {
      bad(book, "parameter '" + p.name + "' is required" + (p.doc.empty() ? "" : " (" + p.doc + ")") +
                    ": pass --param " + p.name + "=...");
    }
  }
  return out;
}

}  // namespace rb::run
