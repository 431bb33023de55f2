---@meta recovery
-- stdlib recovery: seed 004's recovery verification, damage scan and communication.

local recovery = {}

--- The tables the recovery steps count.
---@type string[]
recovery.TABLES = {}

--- The headline counts.
---@param db RunbookDb
---@return table<string, integer>
function recovery.counts(db) end

--- Orphaned submissions, points and attachments.
---@param db RunbookDb
---@return table<string, integer>
function recovery.orphans(db) end

--- Both checks, audited; raises a check failure when there are no users or any orphan.
---@param db RunbookDb
---@return { counts: table, orphaned: table }
function recovery.verify(db) end

--- Relations that cannot be read in full: { { table = "public.x", error = "..." }, ... }
---@param db RunbookDb
---@return table[]
function recovery.unreadable(db) end

--- Sends a communication template on the default channels (or `channel`); never fails.
---@param ctx RunbookContext
---@param severity RunbookSeverity
---@param text string
---@param channel? string|string[]
function recovery.announce(ctx, severity, text, channel) end

--- The technical-team alert when a recovery starts, filled from the run.
---@param ctx RunbookContext
---@param vars? table<string, any>
function recovery.started(ctx, vars) end

return recovery
