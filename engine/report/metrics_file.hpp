// The metrics textfile after a run (and from the daemon): rebuilt from the audit log, written atomically.
#pragma once

#include <filesystem>
#include <vector>

#include "engine/report/prometheus.hpp"

namespace rb::report {

/// Rebuilds the node_exporter textfile dir/runbook.prom from the audit log at `audit_path`:
/// every run's outcome (last run, last success, duration, runs by outcome per runbook and
/// target), the open incidents by severity, and `schedules` (the next due time per schedule,
/// when the caller knows them). Writers take dir/.runbook.prom.lock, so two runs ending at
/// once never write a file that misses one of them. Throws rb::error(io) naming the file.
void write_metrics(const std::filesystem::path& dir, const std::filesystem::path& audit_path,
                   const std::vector<schedule_series>& schedules = {});

}  // namespace rb::report
