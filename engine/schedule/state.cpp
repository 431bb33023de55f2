// The scheduler's state directory: an flock'd lock file and an atomically replaced JSON file.
#include "engine/schedule/state.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <date/date.h>

#include "engine/error.hpp"

namespace rb::schedule {
namespace {

std::string target_of(const entry& e) { return e.target.empty() ? "(default)" : e.target; }

}  // namespace

state_dir::state_dir(std::filesystem::path dir) : m_dir(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(m_dir, ec);
  std::filesystem::path lock = m_dir / "scheduler.lock";
  m_lock_fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (m_lock_fd < 0)
    throw error(error_kind::io, "unable to open the scheduler lock '" + lock.string() + "': " + std::strerror(errno));
  if (::flock(m_lock_fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    ssize_t n = ::pread(m_lock_fd, buf, sizeof buf - 1, 0);
    std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "?";
    ::close(m_lock_fd);
    m_lock_fd = -1;
    throw error(error_kind::locked, "another scheduler (pid " + holder + ") uses the state directory '" +
                                        m_dir.string() + "'; one scheduler per directory, or use a registry");
  }
  std::string me = std::to_string(::getpid());
  if (::ftruncate(m_lock_fd, 0) == 0 && ::pwrite(m_lock_fd, me.data(), me.size(), 0) < 0) {
    // the pid is only a courtesy for the message above
  }
  std::ifstream in(m_dir / "schedule-state.json");
  if (in) {
    std::stringstream s;
    s << in.rdbuf();
    m_state = json::parse(s.str(), nullptr, false);
  }
  if (!m_state.is_object()) m_state = json::object();
}

state_dir::~state_dir() {
  try {
    flush();
  } catch (const std::exception&) {
    // the next start looks at those due times again; their claims keep them from running twice
  }
  if (m_lock_fd >= 0) ::close(m_lock_fd);
}

void state_dir::flush() {
  if (m_dirty) save();
}

std::optional<sys_seconds> state_dir::last_checked(const std::string& key) const {
  auto it = m_state.find("last_checked");
  if (it == m_state.end() || !it->contains(key)) return std::nullopt;
  return sys_seconds(std::chrono::seconds((*it)[key].get<long long>()));
}

void state_dir::set_last_checked(const std::string& key, sys_seconds t) {
  m_state["last_checked"][key] = t.time_since_epoch().count();
  m_dirty = true;
}

bool state_dir::claim_local(const std::string& key, const std::string& due, long long pid) {
  json& claims = m_state["claims"];
  std::string id = key + " " + due;
  if (claims.contains(id)) return false;
  claims[id] = {{"status", "claimed"}, {"pid", pid}};
  // keep the file small: the newest 1,000 claims are plenty to refuse a repeat
  while (claims.size() > 1000) claims.erase(claims.begin());
  save();
  return true;
}

void state_dir::set_status(const std::string& key, const std::string& due, const std::string& status) {
  m_state["claims"][key + " " + due]["status"] = status;
  save();
}

void state_dir::save() {
  std::filesystem::path file = m_dir / "schedule-state.json", tmp = m_dir / ".schedule-state.json.tmp";
  std::string text = m_state.dump(2) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0)
    throw error(error_kind::io, "unable to write the scheduler state '" + file.string() + "': " + std::strerror(errno));
  m_dirty = false;
}

bool local_claims::try_claim(const entry& e, const std::string& due) { return m_state.claim_local(e.key(), due, ::getpid()); }
void local_claims::started(const entry& e, const std::string& due, long long) { m_state.set_status(e.key(), due, "running"); }
void local_claims::finished(const entry& e, const std::string& due, const std::string& status) {
  m_state.set_status(e.key(), due, status);
}

bool registry_claims::try_claim(const entry& e, const std::string& due) {
  return m_registry.try_claim(e.runbook, target_of(e), due, m_host, m_pid, &m_busy);
}
void registry_claims::started(const entry& e, const std::string& due, long long pid) {
  m_registry.started(e.runbook, target_of(e), due, "", pid);
}
void registry_claims::finished(const entry& e, const std::string& due, const std::string& status) {
  m_registry.finished(e.runbook, target_of(e), due, status);
}

}  // namespace rb::schedule
