// Retry: how long to back off before each attempt, and which errors a policy retries.
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/run/retry.hpp"

namespace {

using namespace std::chrono_literals;
using rb::error_kind;
using rb::run::backoff_delay;
using rb::run::backoff_kind;
using rb::run::retry_policy;
using rb::run::retryable;
using rb::run::step_error;

retry_policy policy(backoff_kind backoff, std::chrono::milliseconds initial, std::chrono::milliseconds max) {
  retry_policy p;
  p.attempts = 10;
  p.backoff = backoff;
  p.initial = initial;
  p.max = max;
  return p;
}

retry_policy on(std::vector<std::string> patterns) {
  retry_policy p;
  p.attempts = 3;
  p.on = std::move(patterns);
  return p;
}

step_error sql_error(const std::string& klass, const std::string& sqlstate) {
  step_error e;
  e.kind = error_kind::sql;
  e.klass = klass;
  e.sqlstate = sqlstate;
  e.message = klass;
  return e;
}

step_error error_of_kind(error_kind kind, const std::string& klass = "") {
  step_error e;
  e.kind = kind;
  e.klass = klass.empty() ? std::string(rb::kind_name(kind)) : klass;
  e.message = "failed";
  return e;
}

TEST(Backoff, WaitsTheSameTimeWhenFixed) {
  auto p = policy(backoff_kind::fixed, 2s, 60s);
  for (int attempt = 2; attempt <= 6; ++attempt) EXPECT_EQ(backoff_delay(p, attempt), 2s) << attempt;
}

TEST(Backoff, DoublesEachTimeWhenExponential) {
  auto p = policy(backoff_kind::exponential, 1s, 60s);
  EXPECT_EQ(backoff_delay(p, 2), 1s);
  EXPECT_EQ(backoff_delay(p, 3), 2s);
  EXPECT_EQ(backoff_delay(p, 4), 4s);
  EXPECT_EQ(backoff_delay(p, 5), 8s);
  EXPECT_EQ(backoff_delay(p, 6), 16s);
}

TEST(Backoff, NeverWaitsLongerThanMax) {
  auto p = policy(backoff_kind::exponential, 1s, 5s);
  EXPECT_EQ(backoff_delay(p, 4), 4s);
  EXPECT_EQ(backoff_delay(p, 5), 5s);
  EXPECT_EQ(backoff_delay(p, 6), 5s);
  EXPECT_EQ(backoff_delay(p, 1000), 5s);  // no overflow after many attempts
}

TEST(Retryable, RetriesAnyErrorWhenTheListIsEmpty) {
  retry_policy p;
  EXPECT_TRUE(retryable(p, sql_error("serialization_failure", "40001")));
  EXPECT_TRUE(retryable(p, error_of_kind(error_kind::step_failed, "error")));
  EXPECT_TRUE(retryable(p, error_of_kind(error_kind::connection)));
  EXPECT_TRUE(retryable(p, error_of_kind(error_kind::timeout)));
}

TEST(Retryable, MatchesTheErrorClass) {
  auto p = on({"serialization_failure", "deadlock_detected"});
  EXPECT_TRUE(retryable(p, sql_error("serialization_failure", "40001")));
  EXPECT_TRUE(retryable(p, sql_error("deadlock_detected", "40P01")));
  EXPECT_FALSE(retryable(p, sql_error("unique_violation", "23505")));
}

TEST(Retryable, MatchesTheKindName) {
  auto p = on({"connection", "timeout"});
  EXPECT_TRUE(retryable(p, error_of_kind(error_kind::connection, "connection_failure")));
  EXPECT_TRUE(retryable(p, error_of_kind(error_kind::timeout, "statement_timeout")));
  EXPECT_FALSE(retryable(p, error_of_kind(error_kind::check_failed, "check")));
}

TEST(Retryable, MatchesSqlstatePatterns) {
  auto p = on({"08*", "40001"});
  EXPECT_TRUE(retryable(p, sql_error("connection_failure", "08006")));
  EXPECT_TRUE(retryable(p, sql_error("sqlclient_unable_to_establish_sqlconnection", "08001")));
  EXPECT_TRUE(retryable(p, sql_error("serialization_failure", "40001")));
  EXPECT_FALSE(retryable(p, sql_error("deadlock_detected", "40P01")));
  EXPECT_FALSE(retryable(p, sql_error("unique_violation", "23505")));
  EXPECT_FALSE(retryable(p, sql_error("undefined_table", "42P01")));
}

TEST(Retryable, DoesNotMatchAPatternAgainstAnErrorWithoutSqlstate) {
  auto p = on({"08*"});
  EXPECT_FALSE(retryable(p, error_of_kind(error_kind::step_failed, "error")));
}

TEST(Retryable, NeverRetriesAnInDoubtCommit) {
  EXPECT_FALSE(retryable(retry_policy{}, error_of_kind(error_kind::in_doubt)));
  EXPECT_FALSE(retryable(on({"in_doubt"}), error_of_kind(error_kind::in_doubt)));
  step_error lost_commit = error_of_kind(error_kind::in_doubt);
  lost_commit.sqlstate = "08006";
  EXPECT_FALSE(retryable(on({"08*"}), lost_commit));
}

TEST(Retryable, NeverRetriesARefusedConfirmation) {
  EXPECT_FALSE(retryable(retry_policy{}, error_of_kind(error_kind::not_confirmed)));
  EXPECT_FALSE(retryable(on({"not_confirmed"}), error_of_kind(error_kind::not_confirmed)));
}

TEST(Retryable, NeverRetriesASandboxViolation) {
  EXPECT_FALSE(retryable(retry_policy{}, error_of_kind(error_kind::sandbox)));
  EXPECT_FALSE(retryable(on({"sandbox"}), error_of_kind(error_kind::sandbox)));
}

TEST(Retryable, NeverRetriesACancelledRun) {
  EXPECT_FALSE(retryable(retry_policy{}, error_of_kind(error_kind::cancelled)));
}

}  // namespace
