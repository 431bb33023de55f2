// Reading a watch's SQL metrics: one read-only snapshot per sample, a short statement timeout.
#pragma once

#include <chrono>
#include <vector>

#include "engine/db/connection.hpp"
#include "engine/trigger/watch.hpp"

namespace rb::trigger {

/// Reads the SQL metrics of `metrics` (function metrics are skipped: the caller reads those)
/// on `c`, the watch's own connection, in one REPEATABLE READ READ ONLY transaction, so one
/// sample's values are from one moment. Each query may take at most `timeout`: a slow metric
/// never stalls the tree. A metric that fails (error, timeout, no rows) is left out of the
/// sample and its error put in `errors`; the others are still read (in a new snapshot when the
/// failure aborted the transaction). A lost connection is reconnected at the next sample.
sample read_sql_metrics(db::connection& c, const std::vector<metric_def>& metrics, std::chrono::milliseconds timeout,
                        json& errors);

/// A metric's value from its first column of its first row: booleans as booleans, numeric
/// types as numbers, NULL as nil, anything else as text.
value to_value(const db::column& col, const db::field& f);

}  // namespace rb::trigger
