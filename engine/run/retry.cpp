// Retry: matching errors against a policy, and backoff delays.
#include "engine/run/retry.hpp"

#include <algorithm>

#include "engine/util/text.hpp"

namespace rb::run {

bool retryable(const retry_policy& policy, const step_error& err) {
  if (err.kind == error_kind::in_doubt || err.kind == error_kind::not_confirmed ||
      err.kind == error_kind::sandbox || err.kind == error_kind::cancelled || err.kind == error_kind::memory)
    return false;
  if (policy.on.empty()) return true;
  std::string kind(kind_name(err.kind));
  for (const auto& pattern : policy.on) {
    if (pattern == err.klass || pattern == kind) return true;
    if (!err.sqlstate.empty() && glob_match(pattern, err.sqlstate)) return true;
  }
  return false;
}

milliseconds backoff_delay(const retry_policy& policy, int next_attempt) {
  if (policy.backoff == backoff_kind::fixed) return policy.initial;
  long long d = policy.initial.count();
  for (int i = 2; i < next_attempt && d < policy.max.count(); ++i) d *= 2;
  return milliseconds(std::min<long long>(d, policy.max.count()));
}

}  // namespace rb::run
