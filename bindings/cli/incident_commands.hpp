// `runbook incidents | ack | resolve`, and what the CLI does with incidents when a run ends.
#pragma once

#include <memory>
#include <string>
#include <vector>

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

/// The notifier this process sends alerts and incident notifications through, for `cfg`.
/// The alert dispatcher (engine/alert, branch `alerts`) plugs in here; until then there is
/// none (null), and incident changes are journaled with their channels listed as not told.
std::unique_ptr<alert::notifier> make_notifier(const run::config& cfg, audit::log& journal);

}  // namespace rb::cli
