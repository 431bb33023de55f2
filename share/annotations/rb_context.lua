---@meta runbook_context
-- ctx, the table a step's functions receive, and ctx.db, the connection to the run's target.
-- (runbook's own LuaLS annotations; see README.md in this directory.)

---@class RunbookFailure
---@field step string                 # "phase/step" that failed
---@field error string                # the error, in words

---@class RunbookContext
---@field run string                  # the run id
---@field runbook string              # the runbook's name
---@field title string?               # the runbook's title
---@field phase string                # the phase running now
---@field step string                 # the step running now
---@field attempt integer             # 1, then 2, 3 ... on retries
---@field confirmed boolean           # true in a step declared with `confirm` (it only runs confirmed)
---@field target string?              # the target's name from the config
---@field elapsed number              # seconds since the run began
---@field failure RunbookFailure?     # what failed (in rollback handlers)
---@field params table<string, any>   # the checked --param values (a copy)
---@field db RunbookDb                # the run's target connection
---@field log fun(...: any)           # shown to the operator and audited (a single table: as JSON)

---@class RunbookError
---@field kind string                 # the engine's error kind (sql, timeout, check_failed, ...)
---@field class string?               # unique_violation, foreign_key_violation, undefined_table, connection, ...
---@field sqlstate string?            # "23505"
---@field message string
---@field detail string?
---@field hint string?
---@field statement string?
---@field source string?
---@field line integer?

---@class RunbookExplain
---@field plan string                 # EXPLAIN's text
---@field uses_index boolean
---@field indexes string[]            # the indexes it scans
---@field seq_scan boolean

---@class RunbookPsqlResult
---@field stdout string
---@field stderr string
---@field duration number             # seconds
---@field sha256 string               # of the script
---@field file string?

---@class RunbookPsqlOptions
---@field vars table<string, string|number>?  # \set name value, lower-case names
---@field single_transaction boolean?
---@field file string?                # the argument is a file (relative to the runbook)
---@field sql string?                 # SQL text instead of a file

--- A connection: ctx.db (the run's target) or one opened with db.connect(). Parameters are
--- always bound ($1, $2 ...), never spliced into the SQL.
---@class RunbookDb
local RunbookDb = {}

--- Rows as tables keyed by column name (values typed; NULL is db.null).
---@param sql string
---@param ... any bound as $1, $2 ...
---@return table[]
function RunbookDb:query(sql, ...) end

--- A streaming iterator over a server-side cursor: `for row in ctx.db:rows(sql) do ... end`.
---@param sql string
---@param ... any
---@return fun(): table?
function RunbookDb:rows(sql, ...) end

--- Runs a statement; returns the rows it affected.
---@param sql string
---@param ... any
---@return integer
function RunbookDb:exec(sql, ...) end

--- The first column of the first row, or nil.
---@param sql string
---@param ... any
---@return any
function RunbookDb:scalar(sql, ...) end

--- EXPLAIN of a statement (not run): its plan, whether and which indexes it uses.
---@param sql string
---@param ... any
---@return RunbookExplain
function RunbookDb:explain(sql, ...) end

--- A .sql file beside the runbook, or SQL text, sent as one simple-protocol query (no
--- parameters); errors name the file and line.
---@param file_or_sql string
---@param opts? { file: string }
function RunbookDb:script(file_or_sql, opts) end

--- Runs `fn` in a transaction (a savepoint inside one): committed when it returns, rolled
--- back when it raises (the error goes on).
---@param fn fun()
function RunbookDb:transaction(fn) end

--- Runs `fn` in a savepoint of the open transaction, rolled back to it when `fn` raises.
---@param name string
---@param fn fun()
function RunbookDb:savepoint(name, fn) end

--- Runs `fn` holding the session advisory lock for `key`.
---@param key string
---@param fn fun()
function RunbookDb:lock(key, fn) end

--- The server's NOTICE messages since the last call.
---@return string[]
function RunbookDb:notices() end

--- Closes a db.connect() connection.
function RunbookDb:close() end

--- The fingerprint of this database's schema and data (stdlib fingerprint.take).
---@param opts? { schemas: string[]?, data: boolean? }
---@return table
function RunbookDb:fingerprint(opts) end

--- The connection as libpq environment variables (PGHOST, PGPORT, PGPASSWORD ...) for
--- shell.run{ ..., env = ctx.db:tool_env() }: the password never goes in argv.
---@return table<string, string>
function RunbookDb:tool_env() end

--- A script through the real psql (COPY ... FROM stdin, \i, \set and :'var').
---@param file_or_sql string
---@param opts? RunbookPsqlOptions
---@return RunbookPsqlResult
function RunbookDb:psql(file_or_sql, opts) end

--- A throwaway PostgreSQL made by db.sandbox().
---@class RunbookSandboxCluster
local RunbookSandboxCluster = {}

--- Its connection string.
---@return string
function RunbookSandboxCluster:dsn() end

--- Stops and removes it (also done when it is collected).
function RunbookSandboxCluster:close() end

---@class RunbookNull

--- The db module.
db = {}

--- SQL NULL, as values come back and as a parameter.
---@type RunbookNull
db.null = nil

--- Another connection: to the run's target, a configured target name, or a DSN.
---@param target_or_dsn? string
---@return RunbookDb
function db.connect(target_or_dsn) end

--- A PostgreSQL array literal for a Lua list, to bind as $1::text[] (a plain table binds as JSON).
---@param list any[]
---@return string
function db.array(list) end

--- A throwaway PostgreSQL (to restore a backup into, or a point-in-time recovery of a base backup).
---@param opts? { base_backup: string?, wal_archive: string?, recovery_target_time: string?, database: string?, timeout: number? }
---@return RunbookSandboxCluster
function db.sandbox(opts) end

--- The PostgreSQL 15 client program's path ($RUNBOOK_PG_BIN or the Debian location).
---@param tool string  # "pg_dump", "pg_restore", "psql" ...
---@return string
function db.pg_bin(tool) end
