---@meta runbook_modules
-- shell, alert, escalate, audit, secret, investigate, and the sandbox's os.
-- (runbook's own LuaLS annotations; see README.md in this directory.)

---@class RunbookShellOptions
---@field [integer] string            # the program and its arguments (shell.run)
---@field timeout RunbookDuration?    # the process group is killed after it
---@field env table<string, string|number>?
---@field cwd string?
---@field stdin string?
---@field check boolean?              # a non-zero exit fails the step

--- Programs, run without a shell in their own process group, audited.
shell = {}

--- Runs a program without a shell: `shell.run{ "pg_dump", "-Fc", "-f", path, timeout = "10m" }`.
---@param argv RunbookShellOptions
---@return integer code, string stdout, string stderr, number seconds
function shell.run(argv) end

--- Runs a script through /bin/sh -c (the audit record says so).
---@param script string
---@param opts? RunbookShellOptions
---@return integer code, string stdout, string stderr, number seconds
function shell.sh(script, opts) end

---@alias RunbookSeverity "critical"|"error"|"warning"|"info"

---@class RunbookAlert
---@field severity RunbookSeverity?
---@field summary string
---@field details table?
---@field channel (string|string[])?  # default: the config's default_channels
---@field dedup string?

--- Notifications. `alert{ ... }` (called) is a watch action sent when its trigger acts.
---@class RunbookAlertModule
---@overload fun(spec: RunbookAlert): table
alert = {}

--- Queues a notification on the run's channels (never fails the run); returns the delivery ids.
---@param spec RunbookAlert
---@return string[]
function alert.send(spec) end

---@class RunbookEscalation
---@field level integer?
---@field policy string?              # default: the runbook's or the config's
---@field summary string?
---@field severity RunbookSeverity?
---@field cause string?

--- During a run: opens (or joins and raises) an incident and returns its id. In a watch's
--- `action = escalate{ ... }`: the action, acted on when the trigger fires.
---@param spec? RunbookEscalation
---@return string|table
function escalate(spec) end

---@class RunbookInvestigate
---@field window RunbookDuration      # keep sampling this long
---@field unless RunbookCondition     # if it holds in that time the trigger clears
---@field action RunbookAction        # else this acts

--- A watch action: keep sampling for `window`; unless `unless` holds in that time, `action` acts.
---@param spec RunbookInvestigate
---@return table
function investigate(spec) end

--- The audit log.
audit = {}

--- Writes a `note` record of the current run (and shows it).
---@param message string
---@param fields? table
function audit.note(message, fields) end

--- The value of $NAME, or of the file named by $NAME_FILE; redacted wherever it would appear.
---@param name string
---@return string
function secret(name) end

--- The safe part of os (no execute, exit, getenv, remove, rename, tmpname).
os = {}

---@return number
function os.clock() end

---@param format? string
---@param time? integer
---@return string|table
function os.date(format, time) end

---@param t2 integer
---@param t1 integer
---@return number
function os.difftime(t2, t1) end

---@param date? table
---@return integer
function os.time(date) end
