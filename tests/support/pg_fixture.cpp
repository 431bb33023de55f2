// The test suite's PostgreSQL: one throwaway cluster per test process, and fresh databases in it.
#include "tests/support/pg_fixture.hpp"

#include <unistd.h>

#include <atomic>
#include <memory>
#include <spdlog/spdlog.h>

namespace rb::testing {

rb::db::cluster& shared_cluster() {
  // spdlog's registry must outlive the cluster, whose destructor may log: touching it first
  // makes it constructed first, hence destroyed after.
  static const bool logging_ready = (spdlog::default_logger_raw(), true);
  (void)logging_ready;
  static const auto cluster = std::make_unique<rb::db::cluster>();
  return *cluster;
}

std::string fresh_database(std::string_view prefix) {
  static std::atomic<unsigned> counter{0};
  std::string name;
  for (char c : prefix.substr(0, 40)) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a'), alnum = true;
    name += alnum ? c : '_';
  }
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) name.insert(0, "db_");
  name += "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
  auto& cluster = shared_cluster();
  cluster.create_database(name);
  return cluster.dsn(name);
}

}  // namespace rb::testing
