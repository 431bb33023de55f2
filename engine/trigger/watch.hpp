// A watch: samples metrics every `every` for `lasting`, feeds the decision tree, acts, audits.
//
// The runner owns the loop and the audit records; what it needs from the run (reading the
// metrics, escalating, alerting, calling a runbook function, the run's clock and stop token)
// comes through watch_host, which the executor implements. Every sample is a `sample` record
// (or folded into a `sample.summary` when nothing changed), every decision a `decision` record
// carrying the tree's state, journaled before the action is carried out: a watch resumed
// after a crash continues the remaining time with that state and never repeats an action.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/trigger/tree.hpp"

namespace rb::trigger {

/// One metric: SQL returning one value, or a function the bindings supply.
struct metric_def {
  std::string name;
  std::string sql;                          ///< empty for a function metric
  std::function<value()> fn;                ///< a Lua function(ctx); throws when it fails
  std::string function{};                   ///< "function (file.lua:12)" for a function metric (show)
};

struct watch_def {
  std::string name;
  int line = 0;
  milliseconds every{30'000};
  milliseconds lasting{30 * 60'000};
  milliseconds sample_timeout{5'000};       ///< statement_timeout of the metric queries
  std::vector<metric_def> metrics;
  std::vector<trigger_def> triggers;
  /// `every` / `lasting` written as functions of the run (`lasting = function(ctx) return
  /// ctx.params.watch_for end`): called when the watch starts or resumes, and what they return
  /// replaces `every` / `lasting`. Throw when the function fails or returns no duration.
  std::function<milliseconds()> every_fn, lasting_fn;
};

/// "every 30s for 30m" as `show`, `--dry-run` and diagrams print it; an interval or a length the
/// runbook's code computes when the watch starts is said to be that, not shown as a default.
std::string describe_every(const watch_def& w);
std::string describe_lasting(const watch_def& w);

/// Checks a watch before anything runs: every expression names only its metrics, durations
/// make sense. Returns the problems, each naming the trigger and what is wrong.
std::vector<std::string> validate(const watch_def& w);

/// How a watch ended.
enum class watch_end { completed, rollback, abort, cancelled };
std::string_view to_string(watch_end e);

struct watch_result {
  watch_end end = watch_end::completed;
  std::string trigger;                      ///< the trigger whose action ended it
  std::string reason;                       ///< e.g. "success_rate < 0.5 held: rollback"
  long long samples = 0;
};

/// What the runner needs from the run.
class watch_host {
 public:
  virtual ~watch_host() = default;
  /// Reads every metric once (SQL ones in one snapshot). A metric that could not be read is
  /// left out of the sample and its error put in `errors` (metric name -> message).
  virtual sample read(const watch_def& w, json& errors) = 0;
  /// Appends an audit record of the run (sync: made durable before returning).
  virtual void record(std::string_view event, json fields, bool sync) = 0;
  /// Carries out escalate{...} / alert{...} / a function action.
  virtual void escalate(const json& args, const std::string& reason) = 0;
  virtual void alert(const json& args, const std::string& reason) = 0;
  virtual void call(const action& a, const sample& s) = 0;
  /// The run's stop token and clock.
  virtual bool stopping() = 0;
  virtual std::chrono::steady_clock::time_point now() = 0;
  /// Waits until `t`, returning early when the run is stopping.
  virtual void wait_until(std::chrono::steady_clock::time_point t) = 0;
  /// Shows progress (a live line per metric on a TTY) after each sample, with the triggers'
  /// state (tree::state()); optional.
  virtual void show(const watch_def&, const sample&, milliseconds /*elapsed*/, const json& /*state*/) {}
};

/// Where a watch interrupted by a crash stands, read back from the journal.
struct watch_checkpoint {
  milliseconds elapsed{0};                  ///< time since the watch began (wall clock)
  json state = json::object();              ///< the tree's state at the last record
  int failed_in_row = 0;
  long long samples = 0;
  /// The watch ended (watch.end), or a decision that ends it was journaled: resuming returns
  /// this at once and the executor carries on (rollback path, abort) without sampling again.
  std::optional<watch_result> ended;
};

/// Reads the checkpoint of watch `name` from a run's records (in order), with the time now
/// (RFC 3339 UTC) to count the elapsed time from its watch.start. nullopt if it never started.
std::optional<watch_checkpoint> checkpoint_from(const std::vector<json>& records, const std::string& name,
                                                const std::string& now_utc);

class watch_runner {
 public:
  watch_runner(const watch_def& w, watch_host& host);
  /// Runs the watch to its end; from a checkpoint when resuming.
  watch_result run(const std::optional<watch_checkpoint>& from = std::nullopt);

  /// Consecutive samples with no decision and no change are folded into one summary record
  /// per this many samples.
  static constexpr int k_summary_every = 20;
  /// Failed samples in a row before "metrics unavailable" escalates.
  static constexpr int k_failed_samples_escalate = 3;

 private:
  void flush_summary();
  void fold(const sample& s, milliseconds elapsed);

  const watch_def& m_def;
  watch_host& m_host;
  tree m_tree;
  // the summary being gathered: per metric min/max/last
  json m_summary;
  int m_summary_count = 0;
  milliseconds m_summary_from{0}, m_summary_to{0};
};

/// JSON for a sample's values: numbers, booleans, strings, null for unread metrics.
json to_json(const sample& s, const watch_def& w);

}  // namespace rb::trigger
