// The runbook executable: configure logging, hand argv to the command dispatcher, exit with its code.
#include <spdlog/spdlog.h>

#include "bindings/cli/commands.hpp"

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  spdlog::set_pattern("runbook: %l: %v");
  return rb::cli::dispatch(argc, argv);
}
