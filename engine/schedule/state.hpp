// The scheduler's own state on disk: one scheduler per state directory, and what it last checked.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "engine/schedule/daemon.hpp"
#include "engine/schedule/registry.hpp"

namespace rb::schedule {

/// The state directory: a lock file held for the scheduler's life (a second scheduler on the
/// same directory is refused, naming the holder's pid) and schedule-state.json (when each
/// entry was last checked, and claims when there is no registry), written atomically.
class state_dir {
 public:
  /// Takes the lock. Throws rb::error(locked) when another scheduler holds it.
  explicit state_dir(std::filesystem::path dir);
  ~state_dir();
  state_dir(const state_dir&) = delete;
  state_dir& operator=(const state_dir&) = delete;

  std::optional<sys_seconds> last_checked(const std::string& key) const;
  /// Recorded at once, written at the next flush() (or claim, or destruction): a crash in
  /// between only makes the next start look at those due times again, and their claims,
  /// written at once, keep them from running twice.
  void set_last_checked(const std::string& key, sys_seconds t);
  void flush();
  /// Claims kept locally (no registry): true the first time a (key, due) is claimed.
  bool claim_local(const std::string& key, const std::string& due, long long pid);
  void set_status(const std::string& key, const std::string& due, const std::string& status);

  const std::filesystem::path& path() const { return m_dir; }

 private:
  void save();
  std::filesystem::path m_dir;
  int m_lock_fd = -1;
  json m_state;
  bool m_dirty = false;
};

/// Claims on one host: the state directory's lock makes this the only scheduler.
class local_claims final : public claims {
 public:
  explicit local_claims(state_dir& state) : m_state(state) {}
  bool try_claim(const entry& e, const std::string& due) override;
  void started(const entry& e, const std::string& due, long long pid) override;
  void finished(const entry& e, const std::string& due, const std::string& status) override;
  std::optional<sys_seconds> last_checked(const std::string& key) override { return m_state.last_checked(key); }
  void set_last_checked(const std::string& key, sys_seconds t) override { m_state.set_last_checked(key, t); }
  void flush() override { m_state.flush(); }

 private:
  state_dir& m_state;
};

/// Claims across hosts through the PostgreSQL registry; what this scheduler last checked
/// stays in its state directory.
class registry_claims final : public claims {
 public:
  registry_claims(registry& reg, state_dir& state, std::string host, long long pid)
      : m_registry(reg), m_state(state), m_host(std::move(host)), m_pid(pid) {}
  bool try_claim(const entry& e, const std::string& due) override;
  void started(const entry& e, const std::string& due, long long pid) override;
  void finished(const entry& e, const std::string& due, const std::string& status) override;
  std::optional<sys_seconds> last_checked(const std::string& key) override { return m_state.last_checked(key); }
  void set_last_checked(const std::string& key, sys_seconds t) override { m_state.set_last_checked(key, t); }
  std::string why_not() const override { return m_busy; }
  void flush() override { m_state.flush(); }

 private:
  registry& m_registry;
  std::string m_busy;
  state_dir& m_state;
  std::string m_host;
  long long m_pid;
};

}  // namespace rb::schedule
