// `runbook alert test CHANNEL`, and the alert dispatcher a run's command line gives the run.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/alert/dispatcher.hpp"
#include "engine/run/config.hpp"
#include "engine/run/reporter.hpp"
#include "engine/util/clock.hpp"

namespace rb::cli {

/// runbook alert test CHANNEL [--config FILE] [--severity S] [--summary TEXT]. Returns the exit code.
int cmd_alert(std::vector<std::string> args);

/// A run's alert dispatcher, on its own handle of the audit log (it writes from its worker).
/// wait() gives pending deliveries at most the config's alert_wait and says what did not arrive.
class run_alerts {
 public:
  run_alerts(const run::config& cfg, const std::filesystem::path& audit_file, clock& clk, run::reporter& out);
  ~run_alerts();
  alert::dispatcher* get() { return m_dispatcher.get(); }
  void wait();

 private:
  run::reporter& m_out;
  std::chrono::milliseconds m_wait;
  std::unique_ptr<audit::log> m_log;
  std::unique_ptr<alert::dispatcher> m_dispatcher;
};

}  // namespace rb::cli
