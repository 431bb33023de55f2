// Helpers for tests of the database layer: connections, one-value queries, expected failures,
// and waiting on other backends.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/db/connection.hpp"
#include "engine/db/sqlstate.hpp"

namespace rb::testing {

inline std::unique_ptr<db::connection> connect(const std::string& dsn, const std::string& name = "test database") {
  db::connection_options o;
  o.dsn = dsn;
  o.name = name;
  return std::make_unique<db::connection>(o);
}

/// The first column of the first row, as text.
inline std::string scalar(db::connection& c, const std::string& sql, const std::vector<db::param>& params = {}) {
  auto r = c.exec(sql, params);
  return r.rows.at(0).at(0).text;
}

/// Runs `f`, which must throw sql_failure, and returns what it threw.
template <class F>
db::sql_failure failure_of(F&& f) {
  try {
    f();
  } catch (const db::sql_failure& e) {
    return e;
  }
  ADD_FAILURE() << "expected rb::db::sql_failure";
  return db::sql_failure(error_kind::internal, "(nothing thrown)", "", "", "", "");
}

/// Waits until backend `pid` is running `query` (so a cancel or kill lands inside it).
inline void wait_until_running(db::connection& admin, int pid, const std::string& query) {
  for (int i = 0; i < 2000; ++i) {
    if (scalar(admin, "select count(*) from pg_stat_activity where pid = $1 and state = 'active' and query = $2",
               {std::to_string(pid), query}) == "1")
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "backend " << pid << " never ran " << query;
}

/// Waits until backend `pid` has left pg_stat_activity (pg_terminate_backend does not wait).
inline void wait_until_gone(db::connection& admin, int pid) {
  for (int i = 0; i < 2000; ++i) {
    if (scalar(admin, "select count(*) from pg_stat_activity where pid = $1", {std::to_string(pid)}) == "0") {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // and its goodbye has reached the client
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "backend " << pid << " did not exit";
}

/// Waits until a backend of `admin`'s database is running `query`, and returns its pid (0, with a
/// test failure, when none did).
inline int wait_until_some_backend_runs(db::connection& admin, const std::string& query) {
  for (int i = 0; i < 2000; ++i) {
    auto r = admin.exec("select pid from pg_stat_activity where datname = current_database() and state = 'active' "
                        "and query = $1",
                        {query});
    if (!r.rows.empty()) return std::stoi(r.rows[0][0].text);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "no backend ran " << query;
  return 0;
}

/// Waits until backend `pid` waits for a lock another session holds.
inline void wait_until_blocked(db::connection& admin, int pid) {
  for (int i = 0; i < 2000; ++i) {
    if (scalar(admin, "select count(*) from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'",
               {std::to_string(pid)}) == "1")
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "backend " << pid << " never waited for a lock";
}

}  // namespace rb::testing
