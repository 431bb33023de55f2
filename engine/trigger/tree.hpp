// A watch's decision tree: triggers evaluated in order at each sample, the first that acts wins.
//
// The tree is pure logic over samples and elapsed time: it reads no clock, runs no SQL and
// takes no action itself. The watch runner (engine/trigger/watch) samples the metrics, feeds
// each sample here, carries out the actions it gets back, and journals the tree's state so a
// resumed watch keeps its sustained windows, investigations and fired triggers.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/trigger/expression.hpp"

namespace rb::trigger {

using json = nlohmann::json;
using std::chrono::milliseconds;

/// `when`, `unless` or `clear_when`: an expression over metric names, or a function the
/// bindings supply (a Lua function(m, ctx)). A function that throws counts as unknown (false).
struct condition {
  std::string text;                          ///< as written; "function (file.lua:12)" for functions
  std::optional<expression> expr;
  std::function<value(const sample&)> fn;
  bool holds(const sample& s) const { return truth(s) == true; }
  /// true, false, or nullopt when unknown (a metric it reads is nil, or the function failed).
  std::optional<bool> truth(const sample& s) const;
};

/// What a trigger does when it acts.
struct action {
  enum class kind { rollback, abort, escalate, alert, investigate, call };
  kind what = kind::rollback;
  json args = json::object();                ///< escalate{...} / alert{...} fields as written
  // investigate{ window, unless, action }:
  milliseconds window{0};
  std::optional<condition> unless;
  std::shared_ptr<const action> then;
  /// kind::call: a function(ctx, m) the bindings supply.
  std::function<void(const sample&)> fn;
  /// Readable form for `show` and the audit: "rollback", "escalate{level=2}",
  /// "investigate 10m unless success_rate >= 0.5, then rollback".
  std::string describe() const;
};

/// kind name as the audit writes it: "rollback", "abort", "escalate", "alert", "investigate", "function".
std::string_view kind_name(action::kind k);

struct trigger_def {
  std::string name;
  int line = 0;                              ///< where it is written, for errors
  condition when;
  std::optional<milliseconds> after, before; ///< the time band since the watch began
  std::optional<milliseconds> sustained;     ///< the condition must hold at every sample this long
  std::optional<condition> clear_when;       ///< a fired trigger re-arms only when this holds
  action act;
};

/// One change the tree made at a sample. Decisions with an action are what the runner must
/// do now; the others change only the tree's state (and are audited all the same).
struct decision {
  enum class kind {
    fired,                  ///< `when` held (long enough, in its band): act
    investigation_started,  ///< the action is investigate: watching for `window`
    investigation_cleared,  ///< `unless` held within the window: the trigger stands down
    investigation_expired,  ///< the window passed without `unless`: act with the inner action
    rearmed,                ///< a fired trigger may fire again (clear_when held, or when no longer held)
  };
  kind what;
  std::string trigger;
  std::string condition;                     ///< the expression that decided, as written
  const action* act = nullptr;               ///< to carry out now, or null
  milliseconds at{0};                        ///< since the watch began
};

std::string_view kind_name(decision::kind k);

class tree {
 public:
  explicit tree(std::vector<trigger_def> triggers);

  /// Evaluates the sample taken `elapsed` after the watch began, in this order:
  /// 1. investigations under way: cleared when `unless` holds, else acted on once the window
  ///    has passed (an inner investigate starts a new window); a cleared trigger stands down
  ///    like a fired one (re-armed at once only if `when` no longer holds, or `clear_when` does);
  /// 2. fired triggers re-arm when `clear_when` holds (or, without one, when `when` no longer
  ///    is known not to hold: a metric that could not be read re-arms nothing);
  /// 3. the armed triggers in order, within their band: the first whose `when` holds (at every
  ///    sample for `sustained`, counted inside the band) fires. A trigger that fired stays
  ///    quiet until it re-arms: a condition that keeps holding acts once, not at every sample.
  /// At most one action comes back per sample (an expiring investigation counts as the
  /// sample's action).
  std::vector<decision> evaluate(const sample& s, milliseconds elapsed);

  /// The triggers' state (armed, sustained since, investigation), to journal and restore.
  json state() const;
  /// Restores state() as journaled by an earlier process. Unknown triggers are ignored.
  void restore(const json& state);

  const std::vector<trigger_def>& triggers() const { return m_triggers; }

 private:
  struct trigger_state {
    bool armed = true;
    std::optional<milliseconds> holding_since;  ///< first sample of the current run of `when`
    // an investigation under way: which nested investigate (0 = the trigger's action) and since when
    std::optional<milliseconds> investigating_since;
    int depth = 0;
    bool acted_now = false;  ///< acted (or stood down) at the sample being evaluated: no re-arming in the same one
  };
  const action& investigation(std::size_t i) const;

  std::vector<trigger_def> m_triggers;
  std::vector<trigger_state> m_state;
};

}  // namespace rb::trigger
