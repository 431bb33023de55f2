// Reading a runbook's `schedule` field: a cron string, or { cron, tz, missed, params, target }.
#pragma once

#include <string>

#include <lua.hpp>

#include "engine/run/model.hpp"

namespace rb::lua {

/// Reads the schedule value at `idx` (raw access only) for `book`, whose params are already
/// read. Throws rb::error(bad_runbook) "file:line: runbook 'x': schedule: ..." for a bad cron,
/// an unknown time zone, a bad `missed`, an unknown field, or params the runbook refuses.
run::schedule_def read_schedule(lua_State* L, int idx, const run::runbook_def& book);

}  // namespace rb::lua
