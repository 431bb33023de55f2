// Watch expressions: what `when`, `unless` and `clear_when` strings mean.
#include <gtest/gtest.h>

#include "engine/error.hpp"
#include "engine/trigger/expression.hpp"

namespace rb::trigger {
namespace {

bool holds(const std::string& text, const sample& s = {}) { return expression::parse(text).holds(s); }

std::string parse_error(const std::string& text) {
  try {
    expression::parse(text);
  } catch (const error& e) {
    EXPECT_EQ(e.kind(), error_kind::bad_runbook);
    return e.what();
  }
  ADD_FAILURE() << "parsed: " << text;
  return "";
}

TEST(Expression, ComparesMetricsWithNumbers) {
  sample s{{"success_rate", 0.42}, {"response_ms", 612.0}};
  EXPECT_TRUE(holds("success_rate < 0.5", s));
  EXPECT_FALSE(holds("success_rate >= 0.5", s));
  EXPECT_TRUE(holds("response_ms > 500 and success_rate < 0.5", s));
  EXPECT_TRUE(holds("response_ms <= 500 or success_rate ~= 1", s));
  EXPECT_TRUE(holds("success_rate != 1", s));
}

TEST(Expression, ArithmeticFollowsUsualPrecedence) {
  sample s{{"errors", 30.0}, {"total", 100.0}};
  EXPECT_TRUE(holds("errors / total * 100 > 25", s));
  EXPECT_TRUE(holds("1 + 2 * 3 == 7"));
  EXPECT_TRUE(holds("(1 + 2) * 3 == 9"));
  EXPECT_TRUE(holds("-errors + 31 == 1", s));
  EXPECT_TRUE(holds("7 % 4 == 3"));
  EXPECT_TRUE(holds("1.5e2 == 150"));
}

TEST(Expression, NotBindsLooserThanComparison) {
  sample s{{"x", 10.0}};
  EXPECT_TRUE(holds("not x < 5", s));
  EXPECT_FALSE(holds("not x > 5", s));
  EXPECT_TRUE(holds("not x > 5 or x == 10", s));
}

TEST(Expression, BareMetricIsItsTruth) {
  EXPECT_TRUE(holds("constraint_missing", {{"constraint_missing", true}}));
  EXPECT_FALSE(holds("constraint_missing", {{"constraint_missing", false}}));
  EXPECT_FALSE(holds("blocked", {{"blocked", 0.0}}));
  EXPECT_TRUE(holds("blocked", {{"blocked", 3.0}}));
  EXPECT_TRUE(holds("status == 'CRITICAL'", {{"status", std::string("CRITICAL")}}));
  EXPECT_TRUE(holds("status == \"CRITICAL\" and true", {{"status", std::string("CRITICAL")}}));
}

TEST(Expression, NumericTextComparesAsANumber) {
  // numeric columns may arrive as text: "10" > 9 numerically, not as strings
  EXPECT_TRUE(holds("n > 9", {{"n", std::string("10")}}));
  EXPECT_TRUE(holds("n * 2 == 20", {{"n", std::string("10")}}));
  // two strings compare as strings
  EXPECT_TRUE(holds("a < b", {{"a", std::string("10")}, {"b", std::string("9")}}));
}

TEST(Expression, AMissingMetricNeverFiresNorClears) {
  sample none;  // success_rate could not be read
  EXPECT_FALSE(holds("success_rate < 0.5", none));
  EXPECT_FALSE(holds("not (success_rate < 0.5)", none));
  EXPECT_FALSE(holds("success_rate >= 0.5", none));
  EXPECT_FALSE(holds("success_rate", none));
  EXPECT_FALSE(holds("not success_rate", none));
  // three-valued: a known answer wins over an unknown one
  EXPECT_TRUE(holds("success_rate < 0.5 or 1 == 1", none));
  EXPECT_FALSE(holds("success_rate < 0.5 and 1 == 1", none));
  EXPECT_TRUE(holds("not (success_rate < 0.5 and 1 == 2)", none));  // unknown and false = false
  EXPECT_TRUE(std::holds_alternative<std::monostate>(expression::parse("x + 1").evaluate(none)));
}

TEST(Expression, DivisionByZeroIsUnknownNotInfinity) {
  sample s{{"errors", 3.0}, {"total", 0.0}};
  EXPECT_FALSE(holds("errors / total > 0.25", s));
  EXPECT_FALSE(holds("not (errors / total > 0.25)", s));
}

TEST(Expression, DifferentKindsAreUnequalAndUnordered) {
  sample s{{"flag", true}};
  EXPECT_FALSE(holds("flag == 1", s));
  EXPECT_TRUE(holds("flag ~= 1", s));
  EXPECT_FALSE(holds("flag < 1", s));
  EXPECT_FALSE(holds("not (flag < 1)", s));
}

TEST(Expression, NamesAreTheMetricsItReads) {
  auto e = expression::parse("b > 1 and (a < 2 or b == 3) and not true");
  EXPECT_EQ(e.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(e.text(), "b > 1 and (a < 2 or b == 3) and not true");
}

TEST(Expression, SyntaxErrorsNameTheColumn) {
  EXPECT_NE(parse_error("success_rate <").find("column 15: expected a value after '<'"), std::string::npos);
  EXPECT_NE(parse_error("a = 1").find("compare with '=='"), std::string::npos);
  EXPECT_NE(parse_error("(a < 1").find("expected ')'"), std::string::npos);
  EXPECT_NE(parse_error("a && b").find("use 'and', 'or' and 'not'"), std::string::npos);
  EXPECT_NE(parse_error("a < b < c").find("comparisons do not chain"), std::string::npos);
  EXPECT_NE(parse_error("lag > 5m").find("is not a number"), std::string::npos);
  EXPECT_NE(parse_error("x == nil").find("nil is not a value"), std::string::npos);
  EXPECT_NE(parse_error("'open").find("string not closed"), std::string::npos);
  EXPECT_NE(parse_error("").find("expected a value"), std::string::npos);
  EXPECT_NE(parse_error("a b").find("unexpected 'b'"), std::string::npos);
  EXPECT_NE(parse_error("f(x)").find("unexpected '('"), std::string::npos);
  EXPECT_NE(parse_error("a and").find("expected a value after 'and'"), std::string::npos);
}

TEST(Expression, ValuesPrintAsTheAuditShowsThem) {
  EXPECT_EQ(to_string(value{}), "null");
  EXPECT_EQ(to_string(value{0.25}), "0.25");
  EXPECT_EQ(to_string(value{true}), "true");
  EXPECT_EQ(to_string(value{std::string("ok")}), "\"ok\"");
}

}  // namespace
}  // namespace rb::trigger
