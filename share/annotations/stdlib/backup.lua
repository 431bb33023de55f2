---@meta backup
-- stdlib backup: pg_dump before a migration, checked by a restore, restored when it must be.

---@class BackupOptions
---@field dir string                  # where the dump goes (required)
---@field name string?                # part of the file name
---@field tables string[]?            # only these tables
---@field data_only boolean?
---@field exclude_table_data string[]?  # "schema.table" dumped without rows
---@field target string?              # a target name or DSN (db.connect); default: the run's database
---@field db RunbookDb?               # a connection instead

---@class BackupResult
---@field file string
---@field sha256 string
---@field size integer
---@field counts table<string, integer>
---@field tables string[]?
---@field data_only boolean?
---@field target string?

---@class BackupRestoreOptions
---@field file string
---@field data_only boolean?
---@field tables string[]?            # only these, in this order with data_only

local backup = {}

--- pg_dump -Fc of ctx.db (or opts.db / opts.target) into opts.dir; audited.
---@param ctx RunbookContext
---@param opts BackupOptions
---@return BackupResult
function backup.dump(ctx, opts) end

--- pg_restore --list must read it, and a restore into a throwaway PostgreSQL must give the
--- row counts recorded when it was taken; raises a check failure otherwise.
---@param ctx RunbookContext
---@param b BackupResult
function backup.verify(ctx, b) end

--- Restores a backup over ctx.db (destroys the current data: only from a step with `confirm`).
---@param ctx RunbookContext
---@param opts BackupRestoreOptions
function backup.restore(ctx, opts) end

return backup
