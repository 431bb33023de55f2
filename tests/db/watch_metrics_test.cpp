// A watch's SQL metrics against a real server: one snapshot, typed values, failures cost one metric.
#include <gtest/gtest.h>

#include "engine/trigger/metrics.hpp"
#include "tests/support/db_helpers.hpp"
#include "tests/support/pg_fixture.hpp"

namespace rb::trigger {
namespace {

using namespace std::chrono_literals;

class WatchMetrics : public ::testing::Test {
 protected:
  void SetUp() override {
    dsn = rb::testing::fresh_database("watch_metrics");
    conn = rb::testing::connect(dsn, "watch");
    conn->exec("create table imports (id int, ok boolean)");
    conn->exec("insert into imports select g, g % 4 <> 0 from generate_series(1, 100) g");
  }
  std::string dsn;
  std::unique_ptr<db::connection> conn;
};

TEST_F(WatchMetrics, ValuesAreTyped) {
  std::vector<metric_def> m = {
      {"success_rate", "select avg(case when ok then 1.0 else 0 end) from imports", {}},
      {"total", "select count(*) from imports", {}},
      {"constraint_missing", "select not exists (select 1 from pg_indexes where indexname = 'nope')", {}},
      {"status", "select 'HEALTHY'", {}},
      {"nothing", "select null::int", {}},
  };
  json errors = json::object();
  sample s = read_sql_metrics(*conn, m, 2s, errors);
  EXPECT_TRUE(errors.empty()) << errors.dump();
  EXPECT_DOUBLE_EQ(std::get<double>(s.at("success_rate")), 0.75);
  EXPECT_DOUBLE_EQ(std::get<double>(s.at("total")), 100);
  EXPECT_EQ(std::get<bool>(s.at("constraint_missing")), true);
  EXPECT_EQ(std::get<std::string>(s.at("status")), "HEALTHY");
  EXPECT_TRUE(std::holds_alternative<std::monostate>(s.at("nothing")));
  EXPECT_TRUE(expression::parse("success_rate < 0.9 and total == 100 and constraint_missing").holds(s));
}

TEST_F(WatchMetrics, OneSampleIsOneReadOnlySnapshot) {
  std::vector<metric_def> m = {
      {"started_a", "select extract(epoch from now())", {}},
      {"slept", "select pg_sleep(0.05) is null", {}},
      {"started_b", "select extract(epoch from now())", {}},
      {"isolation", "select current_setting('transaction_isolation')", {}},
      {"read_only", "select current_setting('transaction_read_only') = 'on'", {}},
  };
  json errors = json::object();
  sample s = read_sql_metrics(*conn, m, 2s, errors);
  EXPECT_TRUE(errors.empty()) << errors.dump();
  EXPECT_EQ(s.at("started_a"), s.at("started_b"));  // now() is the transaction's start: one transaction
  EXPECT_EQ(std::get<std::string>(s.at("isolation")), "repeatable read");
  EXPECT_EQ(std::get<bool>(s.at("read_only")), true);
  EXPECT_FALSE(conn->in_transaction());
}

TEST_F(WatchMetrics, ASlowOrBrokenMetricCostsOnlyItself) {
  std::vector<metric_def> m = {
      {"slow", "select pg_sleep(5)", {}},
      {"broken", "select count(*) from no_such_table", {}},
      {"empty", "select 1 where false", {}},
      {"total", "select count(*) from imports", {}},
      {"from_lua", "", [] { return value{1.0}; }},
  };
  json errors = json::object();
  auto t0 = std::chrono::steady_clock::now();
  sample s = read_sql_metrics(*conn, m, 200ms, errors);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_DOUBLE_EQ(std::get<double>(s.at("total")), 100);
  EXPECT_FALSE(s.count("slow") || s.count("broken") || s.count("empty") || s.count("from_lua"));
  EXPECT_NE(errors.value("slow", "").find("timeout"), std::string::npos) << errors.dump();
  EXPECT_NE(errors.value("broken", "").find("no_such_table"), std::string::npos) << errors.dump();
  EXPECT_EQ(errors.value("empty", ""), "the query returned no rows");
  // the connection is still usable for the next sample
  json again = json::object();
  EXPECT_DOUBLE_EQ(std::get<double>(read_sql_metrics(*conn, {m[3]}, 200ms, again).at("total")), 100);
}

TEST_F(WatchMetrics, ALostConnectionIsReconnectedAtTheNextSample) {
  auto killer = rb::testing::connect(dsn, "killer");
  std::vector<metric_def> m = {{"total", "select count(*) from imports", {}}};
  json errors = json::object();
  killer->exec("select pg_terminate_backend($1::int)", {std::to_string(conn->backend_pid())});
  sample s = read_sql_metrics(*conn, m, 2s, errors);
  if (!errors.empty()) {  // the loss is noticed by this sample; the next one reconnects
    EXPECT_FALSE(s.count("total"));
    errors = json::object();
    s = read_sql_metrics(*conn, m, 2s, errors);
  }
  EXPECT_TRUE(errors.empty()) << errors.dump();
  EXPECT_DOUBLE_EQ(std::get<double>(s.at("total")), 100);
}

}  // namespace
}  // namespace rb::trigger
