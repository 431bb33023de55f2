// The runbook executable: configure logging, redact what it prints, hand argv to the command
// dispatcher, exit with its code.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>

#include "bindings/cli/dispatch.hpp"
#include "engine/util/secrets.hpp"

int main(int argc, char** argv) {
  // Everything printed goes through redaction, whichever path it took: a secret read by a
  // runbook file's top level, a description, an error, a log line from the engine.
  rb::secrets::redacting_buf out(std::cout.rdbuf()), err(std::cerr.rdbuf());
  std::streambuf* saved_out = std::cout.rdbuf(&out);
  std::streambuf* saved_err = std::cerr.rdbuf(&err);
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(std::cerr, true);
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("runbook", sink));
  spdlog::set_level(spdlog::level::warn);
  spdlog::set_pattern("runbook: %l: %v");
  int code = rb::cli::dispatch(argc, argv);
  std::cout.flush();
  std::cerr.flush();
  out.close();
  err.close();
  std::cout.rdbuf(saved_out);
  std::cerr.rdbuf(saved_err);
  return code;
}
