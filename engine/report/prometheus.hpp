// Prometheus metrics: the node_exporter textfile runbook writes after each run and from the daemon.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rb::report {

/// What the metrics say about one runbook on one target.
struct run_series {
  std::string runbook, target;
  std::optional<double> last_run, last_success;   ///< Unix time of the last run.end / successful one
  std::optional<double> last_duration;            ///< seconds
  std::map<std::string, long long> outcomes;      ///< status -> runs ended so
};

struct schedule_series {
  std::string runbook, target;
  double next_due = 0;                            ///< Unix time
};

struct metrics {
  std::vector<run_series> runs;
  std::map<std::string, long long> open_incidents;  ///< severity -> count
  std::vector<schedule_series> schedules;
};

/// Builds the run series from audit records (run.start gives runbook and target, run.end the
/// outcome and duration). Call add_record for each record in order.
class run_series_builder {
 public:
  void add_record(const nlohmann::json& record);
  std::vector<run_series> take();

 private:
  std::map<std::string, std::pair<std::string, std::string>> m_run_keys;  // run id -> (runbook, target)
  std::map<std::pair<std::string, std::string>, run_series> m_series;
};

/// The text exposition format (names prefixed runbook_, seconds and _total by convention).
std::string render(const metrics& m);

/// Writes `text` to dir/runbook.prom atomically (a temporary file, fsync, rename), as the
/// node_exporter textfile collector expects. Throws rb::error(io) naming the file.
void write_textfile(const std::filesystem::path& dir, const std::string& text);

/// Unix time of an RFC 3339 UTC stamp ("2026-11-22T02:26:48.123Z"), nullopt if it is not one.
std::optional<double> unix_time(const std::string& rfc3339);

}  // namespace rb::report
