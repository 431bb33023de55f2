// Waiting on what the processes a test started are doing (see process_wait.hpp).
#include "tests/support/process_wait.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

namespace rb::testing {

namespace {

/// Fields of /proc/PID/stat after the command name: state is [0], ppid [1], utime [11], stime [12].
std::vector<std::string> stat_fields(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> out;
  auto paren = line.rfind(')');
  if (paren == std::string::npos) return out;
  std::istringstream rest(line.substr(paren + 1));
  for (std::string f; rest >> f;) out.push_back(f);
  return out;
}

}  // namespace

bool wait_for_descendant(pid_t ancestor, const std::string& comm, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  do {
    std::map<pid_t, pid_t> parent;
    std::vector<pid_t> named;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
      std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      pid_t pid = std::stoi(name);
      auto f = stat_fields(pid);
      if (f.size() < 2) continue;
      parent[pid] = std::stoi(f[1]);
      std::ifstream c(e.path() / "comm");
      std::string c_name;
      if (std::getline(c, c_name) && c_name == comm) named.push_back(pid);
    }
    for (pid_t p : named) {
      for (pid_t up = p; up > 1 && parent.count(up); up = parent[up])
        if (parent[up] == ancestor) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

bool wait_for_cpu(pid_t pid, std::chrono::milliseconds cpu, std::chrono::milliseconds limit) {
  static const long ticks = ::sysconf(_SC_CLK_TCK);
  auto used = [&]() -> long {
    auto f = stat_fields(pid);
    return f.size() > 12 ? (std::stol(f[11]) + std::stol(f[12])) * 1000 / ticks : -1;
  };
  long from = used();
  auto until = std::chrono::steady_clock::now() + limit;
  while (from >= 0 && std::chrono::steady_clock::now() < until) {
    long now = used();
    if (now < 0) return false;
    if (now - from >= cpu.count()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace rb::testing
