// The runbook command line: one function per subcommand, and the dispatcher main() calls.
#pragma once

namespace rb::cli {

/// Parses argv, runs the subcommand, and returns the process exit code. Errors are printed
/// as "runbook: <message>" and mapped to their kind's exit code.
int dispatch(int argc, char** argv);

}  // namespace rb::cli
