// `runbook sandbox list|clean`: the throwaway PostgreSQL clusters on this machine.
#pragma once

#include <string>
#include <vector>

namespace rb::cli {

/// runbook sandbox list [--json] | runbook sandbox clean [--json]. Returns the exit code.
int cmd_sandbox(std::vector<std::string> args);

}  // namespace rb::cli
