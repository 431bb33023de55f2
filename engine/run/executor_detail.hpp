// Helpers the executor's files share: durations in milliseconds, a step's audit fields.
#pragma once

#include <chrono>

#include "engine/run/model.hpp"

namespace rb::run::detail {

inline long long ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration_cast<milliseconds>(b - a).count();
}

inline json step_fields(const phase_def& phase, const step_def& step) {
  return json{{"phase", phase.name}, {"step", step.name}};
}

}  // namespace rb::run::detail
