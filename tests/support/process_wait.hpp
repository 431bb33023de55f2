// Waiting on what the processes a test started are doing: a command running among their
// descendants, processor time being burnt. Observable state, never a guessed sleep.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

namespace rb::testing {

/// Waits up to `limit` for a process named `comm` (/proc/PID/comm) among the descendants of
/// `ancestor`: a command a runbook started is running.
bool wait_for_descendant(pid_t ancestor, const std::string& comm,
                         std::chrono::milliseconds limit = std::chrono::seconds(20));

/// Waits up to `limit` until process `pid` has used `cpu` more processor time (user + system)
/// than when called: it is busy in what it was started on, however loaded the machine is.
bool wait_for_cpu(pid_t pid, std::chrono::milliseconds cpu, std::chrono::milliseconds limit = std::chrono::seconds(20));

}  // namespace rb::testing
