// The alert part of the configuration file: `channels`, `default_channels`, `alert_wait`.
#pragma once

#include <filesystem>

#include <nlohmann/json.hpp>

#include "engine/run/config.hpp"

namespace rb::lua {

/// Reads `channels`, `default_channels` and `alert_wait` of the config table `root` (as JSON)
/// into `cfg`, and registers the secrets among them (webhook URLs, routing keys, passwords,
/// header values) with rb::secrets. Throws rb::error(bad_runbook) naming the file, the line of
/// the channel and the channel for an unknown type, a missing field or a bad URL.
void load_channels(const std::filesystem::path& file, const nlohmann::json& root, run::config& cfg);

/// The config's top-level fields this part reads.
inline const std::vector<std::string> k_channel_fields{"channels", "default_channels", "alert_wait"};

}  // namespace rb::lua
