---@meta health
-- stdlib health: checks from the troubleshooting and monitoring guides, over any connection.

---@class HealthExplain
---@field ms number                   # execution time
---@field planning_ms number
---@field indexes string[]            # indexes it scans, in plan order
---@field nodes string[]              # node types, in plan order
---@field seq_scans string[]          # tables it reads whole
---@field plan table                  # the decoded plan's root node

local health = {}

---@param db RunbookDb
---@param name string
---@return boolean
function health.table_exists(db, name) end

---@param db RunbookDb
---@param tbl string
---@param column string
---@return boolean
function health.column_exists(db, tbl, column) end

---@param db RunbookDb
---@param name string
---@return boolean
function health.index_exists(db, name) end

--- Rows in a table.
---@param db RunbookDb
---@param tbl string
---@return integer
function health.count(db, tbl) end

--- Rows of `child` whose `fk` points at no row of `parent` (by `pk`, default "id").
---@param db RunbookDb
---@param child string
---@param fk string
---@param parent string
---@param pk? string
---@return integer
function health.orphans(db, child, fk, parent, pk) end

--- Groups of rows sharing the same values in `columns`: 0 when they are unique.
---@param db RunbookDb
---@param tbl string
---@param columns string[]
---@return integer
function health.duplicates(db, tbl, columns) end

--- Client connections by state: { { state = "active", connections = 3, max_idle_seconds = 0 }, ... }
---@param db RunbookDb
---@return table[]
function health.connections(db) end

--- Queries running longer than `seconds`.
---@param db RunbookDb
---@param seconds number
---@return table[]
function health.long_running(db, seconds) end

--- Sessions waiting on a lock, with the session blocking them.
---@param db RunbookDb
---@return table[]
function health.blocking_locks(db) end

--- Size of the table, its indexes and its total, in bytes.
---@param db RunbookDb
---@param tbl string
---@return table
function health.table_size(db, tbl) end

--- EXPLAIN (ANALYZE, FORMAT JSON) of a query (it really runs: use it on SELECTs).
---@param db RunbookDb
---@param sql string
---@param ... any
---@return HealthExplain
function health.explain(db, sql, ...) end

--- True when an explain result scans the index `name`.
---@param e HealthExplain
---@param name string
---@return boolean
function health.uses_index(e, name) end

return health
