// The test suite's PostgreSQL: one cluster shared by the whole ctest run (or by one test process
// run by hand), private clusters for tests that need the server to themselves, fresh databases.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "engine/db/cluster.hpp"

namespace rb::testing {

/// The environment variable ctest sets on every test (tests/CMakeLists: the `pg` fixture): the
/// file in which the suite's shared cluster says where it is.
inline constexpr const char* k_suite_cluster_env = "RUNBOOK_TEST_PG";

/// The cluster shared by every test. Under ctest it is the one the `pg` fixture started for the
/// whole run (attached to, never stopped here); run by hand (no $RUNBOOK_TEST_PG), this process
/// starts its own on first use (initdb + start, about a second) and removes it at exit. Tests in
/// it must keep to their own databases: no stopping, restarting or reconfiguring the server, no
/// killing its backends, no counting cluster-wide things, no cluster-wide objects (roles) whose
/// appearance another test would notice -- use private_cluster() for those. Throws rb::error.
rb::db::cluster& shared_cluster();

/// A cluster for this process alone, created on first use and removed at exit: for the tests
/// the shared cluster forbids. Under ctest each test is its own process, so its own cluster.
rb::db::cluster& private_cluster();

/// Creates a database with a unique name starting with `prefix` (lower-cased, non-alphanumerics
/// turned into '_') in `cluster` (shared_cluster() by default) and returns its DSN. Databases
/// made in the shared cluster are dropped when this process exits.
std::string fresh_database(std::string_view prefix);
std::string fresh_database(rb::db::cluster& cluster, std::string_view prefix);

/// Where the suite's shared cluster lives, as its start-up (rb_test_pg start) records it.
struct suite_cluster_record {
  std::filesystem::path base_dir;
  int watcher_pid = 0;  ///< the process that owns the cluster and removes it (see pg_suite.cpp)
};
/// Reads the record; throws rb::error (kind io) when it is missing or unreadable.
suite_cluster_record read_suite_cluster_record(const std::filesystem::path& file);

}  // namespace rb::testing
