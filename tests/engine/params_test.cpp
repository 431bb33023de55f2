// Typed runbook parameters: `--param k=v` arguments, conversion by declared type, defaults,
// required parameters, and errors that name the parameter and the value.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/run/params.hpp"

namespace {

using nlohmann::json;
using rb::error_kind;
using rb::run::param_spec;
using rb::run::param_type;
using rb::run::parse_param_args;
using rb::run::resolve_params;
using rb::run::runbook_def;
using ::testing::HasSubstr;

param_spec param(const std::string& name, param_type type, std::optional<std::string> default_text = std::nullopt,
                 std::vector<std::string> values = {}) {
  param_spec p;
  p.name = name;
  p.type = type;
  p.default_text = std::move(default_text);
  p.values = std::move(values);
  p.required = !p.default_text;
  return p;
}

/// A runbook declaring one parameter of each type.
runbook_def migration() {
  runbook_def book;
  book.name = "migration.users";
  book.params = {
      param("batch", param_type::integer, "1000"),
      param("dry_run", param_type::boolean, "false"),
      param("mode", param_type::enumeration, "safe", {"fast", "safe"}),
      param("pause", param_type::duration, "5s"),
      param("ratio", param_type::number, "0.5"),
      param("table", param_type::string),
  };
  book.params.back().doc = "the table to migrate";
  return book;
}

/// The message of the bad_param error resolving `given` raises; fails the test when it resolves.
std::string resolve_error(const runbook_def& book, const std::map<std::string, std::string>& given) {
  try {
    json out = resolve_params(book, given);
    ADD_FAILURE() << "resolved to " << out.dump();
  } catch (const rb::error& e) {
    EXPECT_EQ(e.kind(), error_kind::bad_param) << e.what();
    return e.what();
  }
  return "";
}

std::string parse_error(const std::vector<std::string>& args) {
  try {
    auto out = parse_param_args(args);
    ADD_FAILURE() << "parsed " << out.size() << " parameters";
  } catch (const rb::error& e) {
    EXPECT_EQ(e.kind(), error_kind::bad_param) << e.what();
    return e.what();
  }
  return "";
}

TEST(ParamArgs, SplitsNameAndValueAtTheFirstEquals) {
  auto args = parse_param_args({"batch=500", "filter=a=b", "note="});
  EXPECT_EQ(args, (std::map<std::string, std::string>{{"batch", "500"}, {"filter", "a=b"}, {"note", ""}}));
}

TEST(ParamArgs, RejectsAnArgumentWithoutName) {
  EXPECT_THAT(parse_error({"batch"}), HasSubstr("'batch'"));
  EXPECT_THAT(parse_error({"=500"}), HasSubstr("'=500'"));
}

TEST(ParamArgs, RejectsAParameterGivenTwice) {
  EXPECT_THAT(parse_error({"batch=1", "batch=2"}), HasSubstr("'batch'"));
}

TEST(Params, ConvertsGivenValuesByType) {
  json out = resolve_params(migration(), {{"batch", "500"}, {"dry_run", "true"}, {"mode", "fast"},
                                          {"pause", "1m30s"}, {"ratio", "0.25"}, {"table", "users"}});
  EXPECT_EQ(out, json::parse(R"({"batch": 500, "dry_run": true, "mode": "fast", "pause": 90.0,
                                 "ratio": 0.25, "table": "users"})"));
  EXPECT_TRUE(out["batch"].is_number_integer());
  EXPECT_TRUE(out["ratio"].is_number_float());
}

TEST(Params, FillsInDefaults) {
  json out = resolve_params(migration(), {{"table", "users"}});
  EXPECT_EQ(out, json::parse(R"({"batch": 1000, "dry_run": false, "mode": "safe", "pause": 5.0,
                                 "ratio": 0.5, "table": "users"})"));
}

TEST(Params, GivesDurationsInSeconds) {
  EXPECT_EQ(resolve_params(migration(), {{"table", "t"}, {"pause", "250ms"}})["pause"], 0.25);
  EXPECT_EQ(resolve_params(migration(), {{"table", "t"}, {"pause", "2h"}})["pause"], 7200.0);
}

TEST(Params, AcceptsTheUsualBooleanSpellings) {
  for (const char* yes : {"true", "yes", "on", "1"})
    EXPECT_EQ(resolve_params(migration(), {{"table", "t"}, {"dry_run", yes}})["dry_run"], true) << yes;
  for (const char* no : {"false", "no", "off", "0"})
    EXPECT_EQ(resolve_params(migration(), {{"table", "t"}, {"dry_run", no}})["dry_run"], false) << no;
}

TEST(Params, RejectsAnotherBoolean) {
  std::string msg = resolve_error(migration(), {{"table", "t"}, {"dry_run", "maybe"}});
  EXPECT_THAT(msg, HasSubstr("'dry_run'"));
  EXPECT_THAT(msg, HasSubstr("'maybe'"));
}

TEST(Params, RequiresAParameterWithoutDefault) {
  std::string msg = resolve_error(migration(), {});
  EXPECT_THAT(msg, HasSubstr("'table'"));
  EXPECT_THAT(msg, HasSubstr("required"));
  EXPECT_THAT(msg, HasSubstr("the table to migrate"));  // its doc
  EXPECT_THAT(msg, HasSubstr("--param table="));
}

TEST(Params, LeavesOutAnOptionalParameterWithoutDefault) {
  runbook_def book;
  book.name = "ops.optional";
  book.params = {param("note", param_type::string)};
  book.params[0].required = false;
  EXPECT_EQ(resolve_params(book, {}), json::object());
  EXPECT_EQ(resolve_params(book, {{"note", "hi"}}), json::parse(R"({"note": "hi"})"));
}

TEST(Params, RejectsAnUnknownParameterSuggestingTheNearestOne) {
  std::string msg = resolve_error(migration(), {{"table", "t"}, {"bacth", "10"}});
  EXPECT_THAT(msg, HasSubstr("'bacth'"));
  EXPECT_THAT(msg, HasSubstr("did you mean 'batch'"));
  EXPECT_THAT(msg, HasSubstr("migration.users"));
}

TEST(Params, SaysWhenARunbookTakesNoParameters) {
  runbook_def book;
  book.name = "ops.plain";
  std::string msg = resolve_error(book, {{"batch", "10"}});
  EXPECT_THAT(msg, HasSubstr("'batch'"));
  EXPECT_THAT(msg, HasSubstr("takes no parameters"));
}

TEST(Params, AcceptsOnlyTheValuesOfAnEnum) {
  EXPECT_EQ(resolve_params(migration(), {{"table", "t"}, {"mode", "safe"}})["mode"], "safe");
  std::string msg = resolve_error(migration(), {{"table", "t"}, {"mode", "fsat"}});
  EXPECT_THAT(msg, HasSubstr("'mode'"));
  EXPECT_THAT(msg, HasSubstr("'fsat'"));
  EXPECT_THAT(msg, HasSubstr("fast, safe"));
  EXPECT_THAT(msg, HasSubstr("did you mean 'fast'"));
}

TEST(Params, RejectsABadIntegerNamingParameterAndValue) {
  for (const char* bad : {"12abc", "1.5", "", "ten", "99999999999999999999"}) {
    std::string msg = resolve_error(migration(), {{"table", "t"}, {"batch", bad}});
    EXPECT_THAT(msg, HasSubstr("'batch'")) << bad;
    EXPECT_THAT(msg, HasSubstr("'" + std::string(bad) + "'"));
    EXPECT_THAT(msg, HasSubstr("integer"));
  }
}

TEST(Params, AcceptsNegativeIntegers) {
  EXPECT_EQ(resolve_params(migration(), {{"table", "t"}, {"batch", "-5"}})["batch"], -5);
}

TEST(Params, RejectsABadNumber) {
  for (const char* bad : {"half", "0.5.1", "inf", "nan", ""}) {
    std::string msg = resolve_error(migration(), {{"table", "t"}, {"ratio", bad}});
    EXPECT_THAT(msg, HasSubstr("'ratio'")) << bad;
    EXPECT_THAT(msg, HasSubstr("'" + std::string(bad) + "'"));
  }
}

TEST(Params, RejectsABadDuration) {
  std::string msg = resolve_error(migration(), {{"table", "t"}, {"pause", "5 minutes"}});
  EXPECT_THAT(msg, HasSubstr("'pause'"));
  EXPECT_THAT(msg, HasSubstr("'5 minutes'"));
  EXPECT_THAT(msg, HasSubstr("duration"));
}

TEST(Params, PassesStringsThrough) {
  EXPECT_EQ(resolve_params(migration(), {{"table", "  Users; DROP  "}})["table"], "  Users; DROP  ");
}

}  // namespace
