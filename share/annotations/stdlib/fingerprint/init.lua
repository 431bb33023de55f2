---@meta fingerprint
-- stdlib fingerprint: a database's schema and data, to prove a rollback restores it exactly.

local fingerprint = {}

--- The fingerprint of `db`: opts.schemas (default: every schema but PostgreSQL's own),
--- opts.data (default true: row counts, content hashes, sequence positions).
---@param db RunbookDb
---@param opts? { schemas: string[]?, data: boolean? }
---@return table
function fingerprint.take(db, opts) end

--- How `b` differs from `a`, as a sorted list of sentences ({} when the same).
---@param a table
---@param b table
---@return string[]
function fingerprint.diff(a, b) end

--- True when `a` and `b` describe the same state.
---@param a table
---@param b table
---@return boolean
function fingerprint.equal(a, b) end

return fingerprint
