// `runbook show`: a runbook's outline as text and as JSON (params, phases, steps, and a watch's
// metrics and decision tree). Pure functions over the model: nothing is run or read.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/run/model.hpp"

namespace rb::trigger {
struct action;
struct condition;
struct metric_def;
struct trigger_def;
}  // namespace rb::trigger

namespace rb::report {

using json = nlohmann::json;

/// The runbook as JSON. Field names are stable: every phase has "kind" ("steps" or "watch");
/// a watch phase has "watch" with every/lasting/sample_timeout (text and *_ms), "metrics"
/// (name, kind "sql" with "sql" or kind "function" with "function") and "triggers" in order
/// (name, order, source, after/before/sustained (text and *_ms, null when absent), when and
/// clear_when ({kind "expression" with text and metrics, or kind "function" with text}, null
/// when absent) and action (kind, text, and args / window, unless, then / function)).
/// Secret values are not redacted here: the caller prints through its redaction.
json book_json(const run::runbook_def& book);

/// The runbook as text for a person: params, phases in order with their steps, and each watch
/// with its metrics (SQL's first line, or "function (file:line)") and its triggers as a
/// decision tree (band, when, sustained, clear_when, the action, an investigate's window,
/// unless and then). Secret values known to the process are redacted.
std::string book_text(const run::runbook_def& book);

/// Text of a condition for one line: its text with runs of white space as one space.
std::string one_line(std::string_view text);
/// A metric's source for one line: the SQL's first non-empty line ("…" when more follows), or
/// "function (file:line)".
std::string metric_source(const trigger::metric_def& m, std::size_t max = 72);
/// A trigger's time band: "any time", "before 5m", "after 30m", "5m to 30m".
std::string band(const trigger::trigger_def& t);

}  // namespace rb::report
