// Sandbox clusters left behind: the owner record each throwaway cluster carries, listing them, and
// stopping and removing those whose owning process is gone (`runbook sandbox list|clean`).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rb::db {

/// Where throwaway clusters are made: $TMPDIR, or /tmp when it is unset.
std::filesystem::path sandbox_tmp_dir();
/// The prefix of their directory names there: "runbook-pg-".
inline constexpr const char* k_sandbox_prefix = "runbook-pg-";
/// The owner record inside a cluster's directory.
inline constexpr const char* k_owner_file = "owner.json";

/// Writes dir/owner.json: this process's pid, its start time (/proc/self/stat field 22, so a
/// reused pid is not taken for the owner), the host name, the time, and whether it is kept.
/// Throws rb::error (kind io) when it cannot be written.
void write_owner_file(const std::filesystem::path& dir, bool keep);

/// What a throwaway cluster's directory says about itself.
struct sandbox_info {
  enum class state {
    live,     ///< its owner is running (or it is being created: no owner file yet, under a minute old)
    stale,    ///< its owner is gone: sweep it
    kept,     ///< kept on purpose (--keep-sandbox): never swept
    unknown,  ///< no owner file (made by an older runbook), or an unreadable one: left alone
    foreign,  ///< owned on another host: left alone
  };
  std::filesystem::path dir;
  state status = state::unknown;
  std::optional<pid_t> owner_pid;
  std::string host;
  std::string started;            ///< ISO 8601 UTC, from the owner file ("" without one)
  std::optional<pid_t> server_pid;  ///< from data/postmaster.pid, when that process is alive
  std::uintmax_t size_bytes = 0;
};
const char* to_string(sandbox_info::state s) noexcept;

/// Every runbook-pg-* directory in `tmp`, with its state. Never throws for one unreadable entry.
std::vector<sandbox_info> list_sandboxes(const std::filesystem::path& tmp = sandbox_tmp_dir());

struct sweep_result {
  std::vector<std::filesystem::path> removed;
  std::vector<std::string> problems;  ///< "unable to ..." for each stale one that could not be removed
};

/// Stops (pg_ctl stop -m immediate, as the directory's owner) and removes every stale sandbox in
/// `tmp`; leaves live, kept, unknown and foreign ones alone. Never throws. Cheap when none.
sweep_result sweep_stale_sandboxes(const std::filesystem::path& tmp = sandbox_tmp_dir());

}  // namespace rb::db
