// Running the real runbook binary on a pseudo-terminal, as a person at a terminal would see it.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tests/support/cli.hpp"

namespace rb::testing {

/// What a program wrote to its terminal and how it ended.
struct pty_result {
  int exit_code = -2;  ///< exit status; -1 when a signal ended it; -2 when killed at the limit
  std::string output;  ///< everything written to the terminal (stdout and stderr, "\n" as "\r\n")
};

/// Runs `runbook args...` in `cli`'s directory with a new pseudo-terminal (forkpty, 120x40) as
/// its stdin, stdout and stderr, TERM=xterm unless `env` says otherwise, and collects what it
/// writes until it exits (killed after `limit`).
pty_result run_on_pty(const cli_sandbox& cli, const std::vector<std::string>& args,
                      std::map<std::string, std::string> env = {},
                      std::chrono::seconds limit = std::chrono::seconds(90));

}  // namespace rb::testing
