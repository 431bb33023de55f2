// The test suite's PostgreSQL: one throwaway cluster per test process, and fresh databases in it.
#pragma once

#include <string>
#include <string_view>

#include "engine/db/cluster.hpp"

namespace rb::testing {

/// The cluster shared by every test of this process: created on first use (initdb + start,
/// about a second), stopped and removed at exit. Throws rb::error if it cannot start.
rb::db::cluster& shared_cluster();

/// Creates a database with a unique name starting with `prefix` (lower-cased, non-alphanumerics
/// turned into '_') in shared_cluster() and returns its DSN. Databases are not dropped: they go
/// with the cluster.
std::string fresh_database(std::string_view prefix);

}  // namespace rb::testing
