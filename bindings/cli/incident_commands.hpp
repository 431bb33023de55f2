// `runbook incidents | ack | resolve`, and what the CLI does with incidents when a run ends.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/alert/dispatcher.hpp"
#include "engine/alert/notification.hpp"
#include "engine/audit/log.hpp"
#include "engine/run/config.hpp"
#include "engine/run/executor.hpp"
#include "engine/run/reporter.hpp"
#include "engine/run/target.hpp"

namespace rb::cli {

/// runbook incidents [--all] [--json] [--follow]. Returns the exit code.
int cmd_incidents(std::vector<std::string> args);
/// runbook ack ID [--by NAME] [--note TEXT].
int cmd_ack(std::vector<std::string> args);
/// runbook resolve ID [--by NAME] [--note TEXT].
int cmd_resolve(std::vector<std::string> args);

/// The alert dispatcher incident commands notify through, over the config's channels; null
/// when the config has none (incident changes are then journaled with no channel told).
std::unique_ptr<alert::dispatcher> make_notifier(const run::config& cfg, audit::log& journal);

}  // namespace rb::cli
