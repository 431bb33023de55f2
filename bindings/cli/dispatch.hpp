// The `runbook` command line: from argv to a command of the table, and its exit code.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace rb::cli {

/// One command of the table as `runbook completion` sees it: its name, its lines in
/// `runbook --help` (usage, what it does) and the function that runs it (every command answers
/// `--help` with its options and does nothing else).
struct command_info {
  std::string name;
  std::vector<std::pair<std::string, std::string>> help;
  int (*run)(std::vector<std::string> args);
};

/// The command table, in `runbook --help` order.
std::vector<command_info> command_table();

/// Parses argv, runs the command, and returns the process exit code. Errors are printed as
/// "runbook: <message>" and mapped to their kind's exit code.
int dispatch(int argc, char** argv);

}  // namespace rb::cli
