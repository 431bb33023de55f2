-- Row backups for incident fixes: before a fix changes or deletes rows, a copy of each goes
-- into a backup table kept across runs (its source table, the row as JSON, the run, what the
-- fix did to it); rows a fix inserts are recorded there too. `restore` undoes the run's fix.
--   local rowbackup = require "rowbackup"
--   rowbackup.create(ctx, "troubleshoot_backup")
--   rowbackup.save(ctx, "troubleshoot_backup", "users", "upper(role) <> role")   -- then UPDATE users ...
--   rowbackup.restore(ctx, "troubleshoot_backup", "users")                      -- in the rollback
-- Table names and conditions are the runbook's own constants; values go in bound ($1..).
-- Source tables need a primary key named `id` (the key a restore replaces rows by).
local rowbackup = {}

--- Creates the backup table when it does not exist (it is the backup: never dropped).
function rowbackup.create(ctx, backup)
  ctx.db:exec("CREATE TABLE IF NOT EXISTS " .. backup .. [[ (
                 id BIGSERIAL PRIMARY KEY, source_table TEXT NOT NULL, action TEXT NOT NULL,
                 row_data JSONB NOT NULL, run TEXT NOT NULL, backed_up_at TIMESTAMPTZ NOT NULL DEFAULT now())]])
end

-- Copies the rows of `source` matching `where` (its own parameters $1..$n are `...`).
local function copy(ctx, backup, source, action, where, ...)
  local n = select("#", ...)
  local args = { ... }
  args[n + 1], args[n + 2], args[n + 3] = source, action, ctx.run
  return ctx.db:exec(string.format("INSERT INTO %s (source_table, action, row_data, run) "
                                   .. "SELECT $%d, $%d, to_jsonb(t), $%d FROM %s t WHERE %s",
                                   backup, n + 1, n + 2, n + 3, source, where),
                     unpack(args, 1, n + 3))
end

--- Copies the rows of `source` matching `where` before the fix changes or deletes them;
--- returns how many.
function rowbackup.save(ctx, backup, source, where, ...)
  return copy(ctx, backup, source, "changed", where, ...)
end

--- Records rows the fix has just inserted into `source` (matching `where`), so that a restore
--- deletes them; returns how many.
function rowbackup.inserted(ctx, backup, source, where, ...)
  return copy(ctx, backup, source, "inserted", where, ...)
end

--- Undoes this run's fix of `source`: rows it inserted are deleted, rows it changed or deleted
--- are put back as they were; the run's backup rows of `source` are then removed.
function rowbackup.restore(ctx, backup, source)
  local mine = "FROM " .. backup .. " b WHERE b.source_table = $1 AND b.run = $2"
  ctx.db:exec("DELETE FROM " .. source .. " t WHERE t.id::text IN (SELECT b.row_data->>'id' " .. mine .. ")",
              source, ctx.run)
  -- A row saved twice in one run (two fixes changed it) goes back as it was before the first.
  ctx.db:exec("INSERT INTO " .. source .. " SELECT (jsonb_populate_record(NULL::" .. source .. ", f.row_data)).* "
              .. "FROM (SELECT DISTINCT ON (b.row_data->>'id') b.row_data " .. mine
              .. " AND b.action = 'changed' ORDER BY b.row_data->>'id', b.id) f", source, ctx.run)
  ctx.db:exec("DELETE FROM " .. backup .. " WHERE source_table = $1 AND run = $2", source, ctx.run)
end

--- Rows of this run's backup of `source` (with `action`, when given).
function rowbackup.count(ctx, backup, source, action)
  return ctx.db:scalar("SELECT count(*) FROM " .. backup .. " WHERE source_table = $1 AND run = $2 "
                       .. "AND ($3::text IS NULL OR action = $3)", source, ctx.run, action or db.null)
end

return rowbackup
