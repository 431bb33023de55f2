// Child processes that outlive a call: spawned in their own process group, polled, signalled.
//
// For runs started by the scheduler and by fleet runs (one `runbook run` process per run). A
// shell command a step runs goes through engine/shell/process instead, which waits for it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rb::shell {

/// Starts argv[0] (a path) with `argv`, in a new process group, signals at their defaults.
/// stdout and stderr go to the files given (created, truncated), else the parent's.
/// Throws rb::error(io) when it cannot be started.
long long spawn_child(const std::vector<std::string>& argv, const std::optional<std::string>& stdout_file = std::nullopt,
                      const std::optional<std::string>& stderr_file = std::nullopt);

/// The running binary's path (/proc/self/exe): how runbook starts runbook.
std::filesystem::path self_program();

/// If child `pid` has ended, its exit code (negative: killed by that signal); never blocks.
std::optional<int> poll_child(long long pid);

}  // namespace rb::shell
