// `runbook alert test CHANNEL`: send a test notification and print what the receiver answered.
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

}  // namespace rb::cli
