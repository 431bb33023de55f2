// Liveness of a run: whether the process that owns a journaled run is still at work.
#pragma once

#include <string>

#include "engine/run/journal.hpp"

namespace rb::run {

/// What this host can say of the process that owns a run.
enum class owner_state {
  alive,    ///< a runbook process with that pid runs on this host (not this process)
  gone,     ///< this host, and no runbook process has that pid: it crashed or was killed
  unknown,  ///< another host, or no pid recorded: nothing can be said from here
};

/// The state of process `pid` recorded with host `host`. A pid now held by another program
/// (not a runbook) is `gone`; so is this process itself (it owns nothing it is asked about).
owner_state process_owner_state(const std::string& host, long long pid);

/// The pid that last worked on the run: its run.start's, or that of its latest run.resume.
long long owner_pid(const run_state& state);

/// The state of the process that owns the run (run.start's host, owner_pid()).
owner_state run_owner_state(const run_state& state);

}  // namespace rb::run
