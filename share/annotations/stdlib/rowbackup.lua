---@meta rowbackup
-- stdlib rowbackup: copies of the rows an incident fix changes, kept across runs, to undo it.

local rowbackup = {}

--- Creates the backup table when it does not exist.
---@param ctx RunbookContext
---@param backup string
function rowbackup.create(ctx, backup) end

--- Copies the rows of `source` matching `where` before the fix changes them; returns how many.
---@param ctx RunbookContext
---@param backup string
---@param source string
---@param where string
---@param ... any bound as $1 ...
---@return integer
function rowbackup.save(ctx, backup, source, where, ...) end

--- Records rows the fix inserted into `source` (matching `where`); returns how many.
---@param ctx RunbookContext
---@param backup string
---@param source string
---@param where string
---@param ... any
---@return integer
function rowbackup.inserted(ctx, backup, source, where, ...) end

--- Undoes this run's fix of `source`.
---@param ctx RunbookContext
---@param backup string
---@param source string
function rowbackup.restore(ctx, backup, source) end

--- Rows of this run's backup of `source` (with `action`, when given).
---@param ctx RunbookContext
---@param backup string
---@param source string
---@param action? string
---@return integer
function rowbackup.count(ctx, backup, source, action) end

return rowbackup
