-- Backups before a migration (seed 000): pg_dump in custom format, checked by restoring it into
-- a throwaway PostgreSQL, and restored when it must be.
--
--   local backup = require "backup"
--   -- dump options: dir (required), name, tables, data_only, exclude_table_data (tables dumped
--   -- without their rows, as "schema.table": unreadable ones), and target (a target name or a
--   -- DSN, through db.connect) or db (a connection); by default the run's own database
--   step "backup" { run = function(ctx)
--     local b = backup.dump(ctx, { dir = ctx.params.backup_dir, name = "before_migration",
--                                  tables = { "messages", "conversations" }, data_only = false })
--     backup.verify(ctx, b)            -- pg_restore --list, then a restore with row counts compared
--     return b                          -- { file, sha256, size, counts }
--   end }
--   step "restore" { confirm = "Replaces the database with the backup",
--                    run = function(ctx) backup.restore(ctx, { file = "/var/backups/x.dump" }) end }
--
-- The connection goes to pg_dump / pg_restore as PG* environment variables (ctx.db:tool_env()),
-- so a password never appears in argv; every command is a `shell` audit record.
local backup = {}

local function tool(name) return db.pg_bin(name) end

--- The connection a backup function works on: opts.db, else opts.target (a configured target's
--- name or a DSN, through db.connect), else the run's own ctx.db.
local function connection(ctx, opts)
  if opts.db then return opts.db end
  if opts.target then return db.connect(opts.target) end
  return ctx.db
end

--- Row counts of the tables (all user tables when `tables` is nil), keyed by schema-qualified
--- quoted name ("public.messages").
local function row_counts(conn, tables, skip)
  local counts = {}
  local names = {}
  if tables then
    for _, t in ipairs(tables) do
      -- schema-qualified, as in the all-tables case: the keys do not depend on search_path
      names[#names + 1] = conn:scalar([[SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
                                        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass]], t)
    end
  else
    -- (a materialized view never populated has no rows to count, nor any in a dump)
    for _, row in ipairs(conn:query([[SELECT format('%I.%I', s.schemaname, s.relname) AS t FROM pg_stat_user_tables s
                                      JOIN pg_class c ON c.oid = s.relid WHERE c.relkind <> 'm' OR c.relispopulated
                                      ORDER BY 1]])) do
      names[#names + 1] = row.t
    end
  end
  for _, t in ipairs(names) do
    if not (skip and skip[t]) then
      counts[t] = conn:scalar("SELECT count(*) FROM " .. t)  -- names quoted by the server above
    end
  end
  return counts
end

--- pg_dump -Fc of ctx.db (or opts.db) into opts.dir, with a timestamped name. Returns
--- { file, sha256, size, counts, tables, data_only, target } and writes an audit note.
function backup.dump(ctx, opts)
  opts = opts or {}
  local conn = connection(ctx, opts)
  check(type(opts.dir) == "string" and opts.dir ~= "", "backup.dump needs dir = \"/path/for/backups\"")
  local file = opts.dir .. "/" .. (opts.name or "backup") .. "_" .. os.date("!%Y%m%dT%H%M%SZ") .. ".dump"
  shell.run { "mkdir", "-p", opts.dir, check = true }
  local argv = { tool("pg_dump"), "-Fc", "--no-owner", "-f", file }
  for _, t in ipairs(opts.tables or {}) do argv[#argv + 1] = "--table=" .. t end
  if opts.data_only then argv[#argv + 1] = "--data-only" end
  -- Tables whose rows cannot be read (a damaged database): their definitions only.
  local skip = {}
  for _, t in ipairs(opts.exclude_table_data or {}) do
    argv[#argv + 1] = "--exclude-table-data=" .. t
    skip[t] = true
  end
  argv.env = conn:tool_env()
  argv.check = true
  argv.timeout = opts.timeout or "1h"
  shell.run(argv)
  local _, sum = shell.run { "sha256sum", file, check = true }
  local _, size = shell.run { "stat", "-c", "%s", file, check = true }
  local result = {
    file = file, sha256 = sum:match("^(%x+)"), size = tonumber(size),
    counts = row_counts(conn, opts.tables, skip), tables = opts.tables, data_only = opts.data_only or false,
    target = opts.target,
  }
  audit.note("backup taken", { file = file, sha256 = result.sha256, size = result.size, tables = opts.tables })
  return result
end

--- Checks a backup: pg_restore --list must read it, and a restore into a throwaway PostgreSQL
--- must give the row counts recorded when it was taken. Raises a check failure otherwise.
function backup.verify(ctx, b)
  if type(b) == "string" then b = { file = b } end
  check(type(b) == "table" and b.file, "backup.verify needs the result of backup.dump or a file name")
  local _, listing = shell.run { tool("pg_restore"), "--list", b.file, check = true }
  local entries = select(2, listing:gsub("TABLE DATA", ""))
  local scratch = db.sandbox()
  local copy = db.connect(scratch:dsn())
  local env = copy:tool_env()
  local restore = { tool("pg_restore"), "--no-owner", "--no-privileges", "-d", env.PGDATABASE, b.file, env = env, check = true }
  if b.data_only then
    -- A data-only dump needs the tables first: their definitions from the database it was taken
    -- from, dumped and restored by the tools themselves (a plain-format dump is psql input, with
    -- meta-commands such as \restrict that no server accepts as SQL).
    local schema = b.file .. ".schema"
    shell.run { tool("pg_dump"), "--schema-only", "--no-owner", "-Fc", "-f", schema,
                env = connection(ctx, { target = b.target }):tool_env(), check = true }
    local ok, err = pcall(shell.run, { tool("pg_restore"), "--no-owner", "--no-privileges", "-d", env.PGDATABASE, schema,
                                       env = env, check = true })
    shell.run { "rm", "-f", schema, check = true }
    if not ok then error(err, 0) end
    -- Only some tables' rows: foreign keys to tables left out must not refuse them.
    restore[#restore + 1] = "--disable-triggers"
  end
  shell.run(restore)
  local bad = {}
  for t, n in pairs(b.counts or {}) do
    local got = copy:scalar("SELECT count(*) FROM " .. t)
    if got ~= n then bad[#bad + 1] = string.format("%s: %d rows in the backup, %d expected", t, got, n) end
  end
  copy:close()
  scratch:close()
  table.sort(bad)
  check(#bad == 0, "backup %s does not restore what was dumped: %s", b.file, table.concat(bad, "; "))
  audit.note("backup verified", { file = b.file, table_data_entries = entries })
  return { ok = true, table_data_entries = entries }
end

--- The use-list (pg_restore -L) that restores the rows of `tables`, in that order.
local function data_list(file, tables)
  local _, listing = shell.run { tool("pg_restore"), "--list", file, check = true }
  local lines = {}
  for _, t in ipairs(tables) do
    for line in listing:gmatch("[^\n]+") do
      local schema, name = line:match("^%d+; %d+ %d+ TABLE DATA (%S+) (%S+) ")
      if name and (name == t or schema .. "." .. name == t) then lines[#lines + 1] = line end
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

--- Restores a backup over ctx.db (pg_restore --clean --if-exists). Destroys the current data:
--- only from a step declared with `confirm = "..."`. With data_only = true only the rows go in,
--- in one transaction (the tables must be there, and empty: the caller truncates them); with
--- tables = { ... } only those tables' entries are restored -- with data_only, in the order
--- given (parents before the tables whose foreign keys point at them).
function backup.restore(ctx, opts)
  check(ctx.confirmed, "backup.restore replaces data: call it from a step with confirm = \"...\"")
  check(type(opts) == "table" and type(opts.file) == "string", "backup.restore needs file = \"...\"")
  local conn = connection(ctx, opts)
  local env = conn:tool_env()
  local argv = { tool("pg_restore"), "--no-owner", "--no-privileges", "-d", env.PGDATABASE,
                 env = env, check = true, timeout = opts.timeout or "1h" }
  if opts.data_only then
    argv[#argv + 1] = "--data-only"
    argv[#argv + 1] = "--single-transaction"
  else
    argv[#argv + 1] = "--clean"
    argv[#argv + 1] = "--if-exists"
  end
  local list
  if opts.data_only and opts.tables then
    list = opts.file .. ".restore-list"
    shell.run { "tee", list, stdin = data_list(opts.file, opts.tables), check = true }
    argv[#argv + 1] = "--use-list=" .. list
  else
    for _, t in ipairs(opts.tables or {}) do argv[#argv + 1] = "--table=" .. t end
  end
  argv[#argv + 1] = opts.file
  local ok, err = pcall(shell.run, argv)
  if list then shell.run { "rm", "-f", list, check = true } end
  if not ok then error(err, 0) end
  audit.note("backup restored", { file = opts.file, data_only = opts.data_only or false, tables = opts.tables })
end

return backup
