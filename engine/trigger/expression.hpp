// Watch expressions: the small, safe condition language of `when`, `unless` and `clear_when`.
//
//   success_rate < 0.5 and not constraint_missing
//   (errors_1h / nullif_total) * 100 >= 25 or status == "CRITICAL"
//
// Numbers, strings ('...' or "..."), true/false, metric names, comparisons (== ~= != < <= > >=),
// arithmetic (+ - * / %, unary -), `and`, `or`, `not`, parentheses. No calls, no assignment, no
// access to anything but the sample's metric values: an expression cannot do harm.
//
// A metric that could not be read is nil, and nil makes a condition unknown, never true
// (three-valued logic, as SQL's NULL): `x < 5` and `not (x < 5)` are both false when x is nil,
// so a lost metric never fires a trigger and never clears one.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace rb::trigger {

/// One metric value: nil (not read), a boolean, a number or a string.
using value = std::variant<std::monostate, bool, double, std::string>;

/// A sample: metric name -> value. Names missing from the map are nil.
using sample = std::map<std::string, value, std::less<>>;

/// A parsed expression, kept with its text (shown as written by `runbook show` and the audit).
class expression {
 public:
  /// Parses `text`. Throws rb::error(bad_runbook) naming the column and what was expected,
  /// e.g. "expression 'a <': column 4: expected a value after '<'".
  static expression parse(const std::string& text);

  /// True only when the condition holds: false for false, unknown (nil involved) and errors.
  /// A bare value is true when it is true, a number other than 0, or a non-empty string.
  bool holds(const sample& s) const;
  /// The value the expression computes (nil when unknown), for display.
  value evaluate(const sample& s) const;

  /// The metric names the expression reads, sorted, once each (`runbook check` compares them
  /// with the watch's metrics).
  const std::vector<std::string>& names() const { return m_names; }
  const std::string& text() const { return m_text; }

  struct node;

 private:
  std::string m_text;
  std::shared_ptr<const node> m_root;
  std::vector<std::string> m_names;
};

/// The value as the audit and the terminal show it: null, true, 0.25, "text".
std::string to_string(const value& v);

}  // namespace rb::trigger
