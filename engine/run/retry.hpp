// Retry: whether an error is retryable under a policy, and how long to back off.
#pragma once

#include "engine/run/model.hpp"

namespace rb::run {

/// True when the policy's `on` list matches the error's class, kind or SQLSTATE (globs such as
/// "08*" allowed). An empty list matches every error except an in-doubt commit, a refused
/// confirmation, a sandbox violation, a cancel and the memory limit, which are never retried.
bool retryable(const retry_policy& policy, const step_error& err);

/// The delay before attempt `next_attempt` (2, 3, ...): fixed = initial; exponential =
/// initial * 2^(next_attempt-2), capped at max.
milliseconds backoff_delay(const retry_policy& policy, int next_attempt);

}  // namespace rb::run
