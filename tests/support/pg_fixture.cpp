// The test suite's PostgreSQL: one cluster shared by the whole ctest run (or by one test process
// run by hand), private clusters for tests that need the server to themselves, fresh databases.
#include "tests/support/pg_fixture.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <spdlog/spdlog.h>
#include <vector>

#include "engine/error.hpp"

namespace rb::testing {
namespace {

/// spdlog's registry must outlive the clusters, whose destructors may log: touching it first
/// makes it constructed first, hence destroyed after.
void logging_first() {
  static const bool ready = (spdlog::default_logger_raw(), true);
  (void)ready;
}

std::unique_ptr<rb::db::cluster> make_shared_cluster() {
  const char* record = std::getenv(k_suite_cluster_env);
  if (record == nullptr || *record == '\0') return std::make_unique<rb::db::cluster>();
  return rb::db::cluster::attach(read_suite_cluster_record(record).base_dir);
}

/// The databases this process made in the shared cluster: dropped at exit, so a run of several
/// hundred tests does not fill the disk with them. (A crashed test's go with the cluster.)
class made_databases {
 public:
  void add(std::string name) {
    std::lock_guard lock(m_mutex);
    m_names.push_back(std::move(name));
  }
  ~made_databases() {
    if (::getpid() != m_pid) return;  // a forked child: the databases are its parent's
    for (const auto& name : m_names) {
      try {
        shared_cluster().drop_database(name);
      } catch (const std::exception& e) {
        spdlog::warn("{}", e.what());
      }
    }
  }

 private:
  pid_t m_pid = ::getpid();
  std::mutex m_mutex;
  std::vector<std::string> m_names;
};

std::string database_name(std::string_view prefix) {
  static std::atomic<unsigned> counter{0};
  static const unsigned salt = std::random_device{}() & 0xffff;  // a reused pid makes other names
  std::string name;
  for (char c : prefix.substr(0, 40)) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a'), alnum = true;
    name += alnum ? c : '_';
  }
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) name.insert(0, "db_");
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "_%d_%04x_%u", static_cast<int>(::getpid()), salt, ++counter);
  return name + suffix;
}

}  // namespace

rb::db::cluster& shared_cluster() {
  logging_first();
  static const auto cluster = make_shared_cluster();
  return *cluster;
}

rb::db::cluster& private_cluster() {
  logging_first();
  static const auto cluster = std::make_unique<rb::db::cluster>();
  return *cluster;
}

std::string fresh_database(std::string_view prefix) { return fresh_database(shared_cluster(), prefix); }

std::string fresh_database(rb::db::cluster& cluster, std::string_view prefix) {
  std::string name = database_name(prefix);
  if (&cluster == &shared_cluster()) {
    static made_databases made;  // constructed after the cluster: destroyed before it
    cluster.create_database(name);
    made.add(name);
  } else {
    cluster.create_database(name);
  }
  return cluster.dsn(name);
}

suite_cluster_record read_suite_cluster_record(const std::filesystem::path& file) {
  std::ifstream in(file);
  suite_cluster_record r;
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "base_dir") r.base_dir = value;
    if (key == "watcher") r.watcher_pid = std::atoi(value.c_str());
  }
  if (r.base_dir.empty())
    throw rb::error(rb::error_kind::io, "unable to find the test suite's PostgreSQL: '" + file.string() +
                                            "' is missing or names no cluster (did the ctest fixture "
                                            "pg.start fail? run the test binary without $" +
                                            k_suite_cluster_env + " to start one of its own)");
  return r;
}

}  // namespace rb::testing
