// A test base that loads a runbook from Lua source and runs it through the real executor,
// optionally against a database, and reads back what the audit log recorded.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bindings/sandbox.hpp"
#include "engine/audit/log.hpp"
#include "engine/run/executor.hpp"
#include "tests/support/temp_dir.hpp"

namespace rb::testing {

/// Nobody at a terminal: destructive steps need opts.yes (run() sets it).
class no_confirm final : public run::confirmer {
 public:
  bool interactive() const override { return false; }
  bool ask(const std::string&) override { return false; }
};

/// Real time, but retries do not wait.
class instant_clock final : public clock {
 public:
  std::chrono::steady_clock::time_point now() const override { return std::chrono::steady_clock::now(); }
  void sleep_for(std::chrono::milliseconds) override {}
};

class RunbookTest : public ::testing::Test {
 protected:
  temp_dir dir{"rb-runbook-test"};
  std::string dsn;  ///< the database runs use; empty: no target
  std::vector<std::pair<std::string, std::string>> target_settings;  ///< the target's `settings`
  std::unique_ptr<lua::sandbox> sb;
  run::runbook_def book;
  std::unique_ptr<audit::log> log;
  std::ostringstream output;
  run::reporter out{output, run::reporter_options{}};
  instant_clock clk;
  no_confirm confirm;

  /// Loads `source` as runbook "t" (runbooks/t.lua) and runs it with --yes.
  run::run_outcome run(const std::string& source, nlohmann::json params = nlohmann::json::object(),
                       std::size_t memory = std::size_t{256} << 20);
  /// Records with this event, in order.
  std::vector<nlohmann::json> records(const std::string& event);
  /// Messages logged with ctx.log, in order.
  std::vector<std::string> logged();
};

}  // namespace rb::testing
