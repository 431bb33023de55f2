// Sandbox clusters left behind: owner records, listing, and sweeping those whose owner is gone.
#include "engine/db/sweeper.hpp"

#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "engine/db/cluster.hpp"
#include "engine/error.hpp"
#include "engine/shell/process.hpp"

namespace rb::db {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

/// A directory without an owner file younger than this is being created: leave it alone.
constexpr auto k_creating_grace = 60s;

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

/// Field 22 of /proc/PID/stat (clock ticks after boot): with the pid, it names one process.
std::optional<unsigned long long> process_start_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  auto paren = line.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(rest >> field)) return std::nullopt;
  try {
    return std::stoull(field);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string now_iso() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// The postmaster's pid (first line of data/postmaster.pid) when that process is alive and is
/// a postgres; a reused pid is not mistaken for the server.
std::optional<pid_t> live_server_pid(const fs::path& dir) {
  std::ifstream in(dir / "data" / "postmaster.pid");
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) return std::nullopt;
  if (::kill(pid, 0) != 0 && errno != EPERM) return std::nullopt;
  std::ifstream comm_in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  if (!std::getline(comm_in, comm) || comm.rfind("postgres", 0) != 0) return std::nullopt;
  return pid;
}

std::uintmax_t tree_size(const fs::path& dir) {
  std::uintmax_t total = 0;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec)) {
      auto n = it->file_size(fec);
      if (!fec) total += n;
    }
  }
  return total;
}

sandbox_info inspect(const fs::path& dir, bool with_size) {
  sandbox_info info;
  info.dir = dir;
  info.server_pid = live_server_pid(dir);
  if (with_size) info.size_bytes = tree_size(dir);
  std::ifstream in(dir / k_owner_file);
  json owner = in ? json::parse(in, nullptr, false) : json();
  if (!owner.is_object()) {
    std::error_code ec;
    auto mtime = fs::last_write_time(dir, ec);
    bool young = !ec && fs::file_time_type::clock::now() - mtime < k_creating_grace;
    // Without an owner file (made by an older runbook) nothing says whether its owner lives, and
    // a stopped server may be restarted by it: list it, never sweep it.
    info.status = young ? sandbox_info::state::live : sandbox_info::state::unknown;
    return info;
  }
  info.owner_pid = owner.value("pid", 0);
  info.host = owner.value("host", "");
  info.started = owner.value("started", "");
  auto start_time = owner.value("start_time", 0ULL);
  if (!info.host.empty() && info.host != host_name()) {
    info.status = sandbox_info::state::foreign;
  } else if (owner.value("keep", false)) {
    info.status = sandbox_info::state::kept;
  } else {
    auto now_start = *info.owner_pid > 0 ? process_start_time(*info.owner_pid) : std::nullopt;
    info.status = now_start && *now_start == start_time ? sandbox_info::state::live : sandbox_info::state::stale;
  }
  return info;
}

/// pg_ctl stop -m immediate as the user owning the data directory, then SIGKILL if that failed.
void stop_server(const fs::path& dir, pid_t server_pid) {
  shell::process_options opts;
  opts.argv = {pg_bin("pg_ctl").string(), "stop", "--pgdata=" + (dir / "data").string(), "--mode=immediate",
               "--wait", "--timeout=30", "--silent"};
  opts.cwd = dir;
  opts.clear_env = true;
  const char* path = std::getenv("PATH");
  opts.env = {{"PATH", path != nullptr && *path != '\0' ? path : "/usr/local/bin:/usr/bin:/bin"}, {"LC_ALL", "C"}};
  opts.timeout = 40s;
  opts.output_limit = 16 * 1024;
  struct stat st {};
  if (::geteuid() == 0 && ::stat((dir / "data").c_str(), &st) == 0 && st.st_uid != 0) {
    if (passwd* pw = ::getpwuid(st.st_uid); pw != nullptr) opts.run_as_user = pw->pw_name;
  }
  auto r = shell::run(opts);
  if (!r.ok() && live_server_pid(dir) == server_pid) {
    spdlog::warn("pg_ctl could not stop the stale sandbox cluster in '{}' ({}); killing its server {}",
                 dir.string(), r.err, server_pid);
    ::kill(server_pid, SIGKILL);
  }
}

}  // namespace

fs::path sandbox_tmp_dir() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? fs::path(tmp) : fs::path("/tmp");
}

void write_owner_file(const fs::path& dir, bool keep) {
  pid_t pid = ::getpid();
  json owner = {{"pid", pid},
                {"start_time", process_start_time(pid).value_or(0)},
                {"host", host_name()},
                {"started", now_iso()},
                {"keep", keep}};
  fs::path tmp = dir / (std::string(k_owner_file) + ".tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << owner.dump() << "\n";
    out.close();
    if (!out)
      throw error(error_kind::io, "unable to record the owner of the sandbox PostgreSQL cluster in '" +
                                      tmp.string() + "'");
  }
  std::error_code ec;
  fs::rename(tmp, dir / k_owner_file, ec);
  if (ec)
    throw error(error_kind::io, "unable to record the owner of the sandbox PostgreSQL cluster in '" +
                                    dir.string() + "': " + ec.message());
}

const char* to_string(sandbox_info::state s) noexcept {
  switch (s) {
    case sandbox_info::state::live: return "live";
    case sandbox_info::state::stale: return "stale";
    case sandbox_info::state::kept: return "kept";
    case sandbox_info::state::unknown: return "unknown";
    case sandbox_info::state::foreign: return "foreign";
  }
  return "unknown";
}

namespace {

std::vector<sandbox_info> scan(const fs::path& tmp, bool with_size) {
  std::vector<sandbox_info> found;
  std::error_code ec;
  fs::directory_iterator it(tmp, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::error_code dec;
    if (name.rfind(k_sandbox_prefix, 0) != 0 || it->is_symlink(dec) || !it->is_directory(dec)) continue;
    try {
      found.push_back(inspect(it->path(), with_size));
    } catch (const std::exception& e) {  // an owner file of the wrong shape: judge nothing
      sandbox_info odd;
      odd.dir = it->path();
      found.push_back(odd);
      spdlog::debug("unable to read the sandbox cluster in '{}': {}", it->path().string(), e.what());
    }
  }
  return found;
}

}  // namespace

std::vector<sandbox_info> list_sandboxes(const fs::path& tmp) { return scan(tmp, true); }

sweep_result sweep_stale_sandboxes(const fs::path& tmp) {
  sweep_result result;
  for (const auto& info : scan(tmp, false)) {
    if (info.status != sandbox_info::state::stale) continue;
    try {
      if (info.server_pid) stop_server(info.dir, *info.server_pid);
    } catch (const std::exception& e) {
      result.problems.push_back("unable to stop the stale sandbox cluster in '" + info.dir.string() + "': " + e.what());
      continue;
    }
    auto still = live_server_pid(info.dir);
    for (auto until = std::chrono::steady_clock::now() + 5s; still && std::chrono::steady_clock::now() < until;
         still = live_server_pid(info.dir))
      ::usleep(50 * 1000);  // a killed server lingers until its parent reaps it
    if (still) {
      result.problems.push_back("unable to stop the stale sandbox cluster in '" + info.dir.string() +
                                "': its server (pid " + std::to_string(*still) + ") is still running");
      continue;
    }
    std::error_code ec;
    fs::remove_all(info.dir, ec);
    if (ec && fs::exists(info.dir)) {  // another sweeper may have removed it first
      result.problems.push_back("unable to remove the stale sandbox cluster '" + info.dir.string() + "': " + ec.message());
      continue;
    }
    spdlog::info("removed the stale sandbox PostgreSQL cluster in '{}' (owner pid {} is gone)", info.dir.string(),
                 info.owner_pid.value_or(0));
    result.removed.push_back(info.dir);
  }
  for (const auto& p : result.problems) spdlog::warn("{}", p);
  return result;
}

}  // namespace rb::db
