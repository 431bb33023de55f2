---@meta guards
-- stdlib guards: conditions a runbook or phase checks before it runs (`guard = { ... }`).

local guards = {}

--- No client transaction open longer than `limit` ("5m").
---@param limit RunbookDuration
---@return RunbookGuard
function guards.no_long_transactions(limit) end

--- Replication lag under `limit` (on a primary: its replicas'; on a replica: its own).
---@param limit RunbookDuration
---@return RunbookGuard
function guards.replication_lag_below(limit) end

--- No session of this database is waiting for a lock.
---@return RunbookGuard
function guards.no_blocking_locks() end

--- Every user table's dead-tuple ratio is below `ratio` (0.2 = 20%).
---@param ratio number
---@return RunbookGuard
function guards.bloat_below(ratio) end

--- The time of day in `tz` (default UTC) is within [start, finish): between("01:00", "05:00").
---@param start string
---@param finish string
---@param tz? string
---@return RunbookGuard
function guards.between(start, finish, tz) end

--- A window written as "02:00-04:00" (or "any"), or a function(ctx) returning window, tz.
---@param window string|fun(ctx: RunbookContext): string, string?
---@param tz? string
---@return RunbookGuard
function guards.maintenance_window(window, tz) end

return guards
