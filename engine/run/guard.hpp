// Guards: the conditions a runbook or a phase checks before it runs (`guard = ...`).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "engine/run/context.hpp"
#include "engine/run/model.hpp"

namespace rb::run {

/// What the guards of a runbook or a phase said.
struct guard_verdict {
  bool ok = true;                   ///< every guard said yes (or there are none)
  std::size_t index = 0;            ///< the guard that said no or raised (1-based); 0 when ok
  std::size_t of = 0;               ///< how many guards there are
  std::string reason;               ///< why it said no
  std::optional<step_error> error;  ///< it raised, or returned no boolean: a broken guard
  /// "guard 2 of 3".
  std::string which() const { return "guard " + std::to_string(index) + " of " + std::to_string(of); }
};

/// Asks the guards of `phase` (of the runbook when `phase` is null) in order, each under the
/// phase's (or runbook's) time limit with the target's database timeouts, until one says no or
/// raises. Every guard asked is a `guard` audit record: scope (runbook or phase), phase, index,
/// of, ok, reason or error, duration_ms. Statements a guard runs are audited as its own
/// (step "guard N"). Never throws for what a guard does; the audit log's errors propagate.
guard_verdict check_guards(run_context& ctx, const runbook_def& book, const phase_def* phase);

}  // namespace rb::run
