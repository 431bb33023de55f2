// `runbook sandbox list|clean`: the throwaway PostgreSQL clusters on this machine, and removing
// those whose owning process is gone.
#include "bindings/cli/commands.hpp"

#include <cstdio>
#include <cxxopts.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "engine/db/sweeper.hpp"
#include "engine/error.hpp"

namespace rb::cli {
namespace {

using json = nlohmann::json;

std::string human_size(std::uintmax_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace

int cmd_sandbox(command_args args) {
  cxxopts::Options options("runbook sandbox",
                           "List the throwaway PostgreSQL clusters (--sandbox, rehearse, db.sandbox()) in $TMPDIR, "
                           "or stop and remove the stale ones: those whose owning process is gone.");
  options.add_options()("h,help", "show this help")("json", "print JSON")(
      "action", "list or clean", cxxopts::value<std::string>());
  options.parse_positional({"action"});
  options.positional_help("list|clean");
  std::string prog = "runbook sandbox";
  std::vector<char*> argv{prog.data()};
  for (auto& a : args) argv.push_back(a.data());
  auto r = [&] {
    try {
      return options.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const cxxopts::exceptions::exception& e) {
      throw error(error_kind::usage, std::string(e.what()) + " (see 'runbook sandbox --help')");
    }
  }();
  if (r.count("help")) return std::cout << options.help(), 0;
  std::string action = r.count("action") ? r["action"].as<std::string>() : "";
  bool as_json = r.count("json") > 0;

  if (action == "list") {
    auto found = db::list_sandboxes();
    if (as_json) {
      json out = json::array();
      for (const auto& s : found)
        out.push_back({{"dir", s.dir.string()},
                       {"state", db::to_string(s.status)},
                       {"pid", s.owner_pid ? json(*s.owner_pid) : json(nullptr)},
                       {"owner_alive", s.status == db::sandbox_info::state::live},
                       {"host", s.host},
                       {"started", s.started},
                       {"server_pid", s.server_pid ? json(*s.server_pid) : json(nullptr)},
                       {"size_bytes", s.size_bytes}});
      std::cout << out.dump() << "\n";
      return 0;
    }
    if (found.empty()) {
      std::cout << "no sandbox clusters in " << db::sandbox_tmp_dir().string() << "\n";
      return 0;
    }
    for (const auto& s : found) {
      std::cout << s.dir.string() << "  " << db::to_string(s.status)
                << "  owner " << (s.owner_pid ? std::to_string(*s.owner_pid) : "?")
                << "  started " << (s.started.empty() ? "?" : s.started)
                << "  server " << (s.server_pid ? "running (pid " + std::to_string(*s.server_pid) + ")" : "stopped")
                << "  " << human_size(s.size_bytes) << "\n";
    }
    return 0;
  }
  if (action == "clean") {
    auto swept = db::sweep_stale_sandboxes();
    if (as_json) {
      json removed = json::array();
      for (const auto& d : swept.removed) removed.push_back(d.string());
      std::cout << json{{"removed", removed}, {"problems", swept.problems}}.dump() << "\n";
    } else {
      for (const auto& d : swept.removed) std::cout << "removed " << d.string() << "\n";
      std::cout << "removed " << swept.removed.size() << " stale sandbox cluster"
                << (swept.removed.size() == 1 ? "" : "s") << "\n";
    }
    return swept.problems.empty() ? 0 : exit_codes::failed;
  }
  throw error(error_kind::usage, "usage: runbook sandbox list [--json] | runbook sandbox clean [--json]");
}

}  // namespace rb::cli
