// Runs a piece of test code in a forked child with a time limit, so that code which crashes,
// hangs or ends the process fails one test instead of taking the whole test binary down.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace rb::testing {

/// What a forked child reported, and whether it finished in time.
struct child_report {
  bool finished = false;  ///< false: still running at the limit (killed), or it crashed
  int signal = 0;         ///< the signal that ended it, if one did (SIGSEGV ...)
  int exit_code = -1;     ///< when it exited normally
  std::vector<std::string> lines;
  std::chrono::milliseconds elapsed{};
};

/// Runs `body` in a forked child for at most `limit`; the lines it returns come back through a
/// pipe. A child still running at the limit is killed.
child_report in_child(const std::function<std::vector<std::string>()>& body, std::chrono::milliseconds limit);

}  // namespace rb::testing
