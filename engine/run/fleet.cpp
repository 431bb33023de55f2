// Fleet runs: a bounded pool of member processes, stop-after-failures, cancel-all, a summary.
#include "engine/run/fleet.hpp"

#include <fnmatch.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "engine/error.hpp"
#include "engine/shell/child.hpp"
#include "engine/util/text.hpp"

namespace rb::run {
namespace {

using steady = std::chrono::steady_clock;

/// A run its guard skipped did what was asked (exit 0): it counts with the successes.
bool succeeded(const fleet_member& m) {
  return m.status == "succeeded" || m.status == "succeeded_with_failures" || m.status == "skipped";
}

/// The last JSON object line of a member's stdout (`runbook run --json` prints the outcome last).
nlohmann::json outcome_of(const std::filesystem::path& out) {
  std::ifstream in(out);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty() && line[0] == '{') last = line;
  return nlohmann::json::parse(last, nullptr, false);
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::string file_safe(const std::string& target) {
  std::string s;
  for (char c : target) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  return s;
}

}  // namespace

int fleet_result::exit_code() const {
  if (cancelled) return exit_codes::cancelled;
  int ok = 0;
  for (const auto& m : members) {
    if (m.status == "rollback_failed") return exit_codes::rollback_failed;
    ok += succeeded(m);
  }
  if (ok == static_cast<int>(members.size())) return exit_codes::ok;
  return ok == 0 ? exit_codes::failed : exit_codes::succeeded_with_failures;
}

nlohmann::json fleet_result::to_json() const {
  nlohmann::json out = {{"exit_code", exit_code()}, {"cancelled", cancelled}, {"members", nlohmann::json::array()}};
  for (const auto& m : members)
    out["members"].push_back({{"target", m.target}, {"status", m.status}, {"run", m.run_id},
                              {"duration_ms", m.duration.count()}, {"exit_code", m.exit_code}, {"log", m.log.string()}});
  return out;
}

bool is_fleet_spec(const std::string& spec) { return spec.find_first_of(",*?[") != std::string::npos; }

std::vector<std::string> select_targets(const std::string& spec, const std::vector<std::string>& known) {
  std::vector<std::string> out;
  std::stringstream parts(spec);
  std::string part;
  while (std::getline(parts, part, ',')) {
    part = trim(part);
    if (part.empty()) continue;
    bool any = false;
    for (const auto& t : known)
      if (::fnmatch(part.c_str(), t.c_str(), 0) == 0) {
        any = true;
        if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
      }
    if (!any)
      throw error(error_kind::usage, "no configured target matches '" + part + "'" + did_you_mean(part, known) +
                                         "; targets: " + join(known, ", "));
  }
  if (out.empty()) throw error(error_kind::usage, "--target '" + spec + "' names no target");
  // config order, so the summary reads like the config
  std::vector<std::string> ordered;
  for (const auto& t : known)
    if (std::find(out.begin(), out.end(), t) != out.end()) ordered.push_back(t);
  return ordered;
}

fleet_result run_fleet(const std::vector<std::string>& targets,
                       const std::function<std::vector<std::string>(const std::string&)>& argv_for,
                       const fleet_options& opts, const std::function<bool()>& stopping,
                       const std::function<void(const fleet_member&, bool ended)>& progress) {
  fleet_result result;
  for (const auto& t : targets) {
    fleet_member m;
    m.target = t;
    result.members.push_back(std::move(m));
  }
  std::map<long long, std::size_t> running;  // pid -> member
  std::map<long long, steady::time_point> started;
  std::size_t next = 0;
  int failures = 0;
  bool stop_sent = false;
  const int parallel = std::max(1, opts.parallel);
  for (;;) {
    if (stopping() && !stop_sent) {
      stop_sent = true;
      result.cancelled = true;
      for (const auto& [pid, i] : running) ::kill(static_cast<pid_t>(pid), SIGTERM);
    }
    bool may_start = !stop_sent && (opts.stop_after_failures <= 0 || failures < opts.stop_after_failures);
    while (may_start && next < result.members.size() && static_cast<int>(running.size()) < parallel) {
      fleet_member& m = result.members[next];
      std::string base = file_safe(m.target);
      m.log = opts.log_dir / (base + ".log");
      long long pid = shell::spawn_child(argv_for(m.target), (opts.log_dir / (base + ".out")).string(), m.log.string());
      m.status = "running";
      running[pid] = next++;
      started[pid] = steady::now();
      progress(m, false);
    }
    if (running.empty()) break;
    bool ended = false;
    for (auto it = running.begin(); it != running.end();) {
      auto code = shell::poll_child(it->first);
      if (!code) {
        ++it;
        continue;
      }
      fleet_member& m = result.members[it->second];
      m.exit_code = *code;
      m.duration = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - started[it->first]);
      nlohmann::json outcome = outcome_of(opts.log_dir / (file_safe(m.target) + ".out"));
      if (outcome.is_object()) {
        m.status = outcome.value("status", "");
        m.run_id = outcome.value("run", "");
      }
      if (m.status.empty() || m.status == "running")
        m.status = *code < 0 ? "killed by signal " + std::to_string(-*code) : "exit " + std::to_string(*code);
      if (!succeeded(m)) ++failures;
      progress(m, true);
      it = running.erase(it);
      ended = true;
    }
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return result;
}

}  // namespace rb::run
