// State directory, operator identity, run ids.
#include "engine/run/state.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

#include "engine/util/clock.hpp"
#include "engine/util/hash.hpp"

namespace rb::run {

std::filesystem::path state_dir(const std::optional<std::string>& flag) {
  if (flag && !flag->empty()) return *flag;
  if (const char* e = std::getenv("RUNBOOK_STATE_DIR"); e && *e) return e;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::filesystem::path(x) / "runbook";
  std::string home;
  if (const char* h = std::getenv("HOME"); h && *h) home = h;
  else if (const passwd* pw = ::getpwuid(::geteuid())) home = pw->pw_dir;
  else home = ".";
  return std::filesystem::path(home) / ".local" / "state" / "runbook";
}

std::filesystem::path audit_path(const std::filesystem::path& dir) { return dir / "audit.jsonl"; }

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

std::string operator_identity() {
  std::string user = "uid" + std::to_string(::geteuid());
  if (const passwd* pw = ::getpwuid(::geteuid())) user = pw->pw_name;
  std::string id = user + "@" + host_name();
  if (const char* sudo = std::getenv("SUDO_USER"); sudo && *sudo && user != sudo)
    id += std::string(" via sudo from ") + sudo;
  return id;
}

std::string new_run_id() { return compact_utc_now() + "-" + random_hex(3); }

}  // namespace rb::run
