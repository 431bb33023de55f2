// The `runbook` command line: from argv to a command of the table, and its exit code.
#pragma once

namespace rb::cli {

/// Parses argv, runs the command, and returns the process exit code. Errors are printed as
/// "runbook: <message>" and mapped to their kind's exit code.
int dispatch(int argc, char** argv);

}  // namespace rb::cli
