---@meta runbook_dsl
-- The runbook language: runbook, phase, step, checklist, watch, trigger, check.
-- (runbook's own LuaLS annotations; see README.md in this directory.)

---@alias RunbookDuration string|number  # "30s", "5m", "1h", "2d", or seconds
---@alias RunbookOnError "rollback"|"abort"|"continue"
---@alias RunbookGuard fun(ctx: RunbookContext): boolean, string?

---@class RunbookParam
---@field type ("string"|"integer"|"number"|"boolean"|"enum"|"duration")?  # default "string"
---@field default any?                # used when --param does not give it (a duration as "5m")
---@field doc string?                 # shown by `runbook show`
---@field values string[]?            # the choices of an enum
---@field required boolean?           # --param name=value must be given

---@class RunbookSchedule
---@field cron string                 # "0 3 * * *"
---@field tz string?                  # tz database name, default "UTC"
---@field missed ("skip"|"once")?     # what a scheduler that was down does about missed times
---@field params table<string, any>?  # --param values for scheduled runs
---@field target string?              # the target scheduled runs use

---@class RunbookSpec
---@field title string?
---@field description string?
---@field tags string[]?
---@field params table<string, RunbookParam>?
---@field on_error RunbookOnError?     # default "rollback"
---@field timeout RunbookDuration?     # default time limit of each step (10m)
---@field target string?              # default target name from the config
---@field lock boolean?               # one run per (runbook, target) across all hosts
---@field fixture string?             # SQL file beside the runbook that seeds --sandbox
---@field escalation string?          # the policy whose incident a failed run opens
---@field guard (RunbookGuard|RunbookGuard[])?  # asked before the first phase; false skips the run
---@field schedule (string|RunbookSchedule)?  # cron, for `runbook schedule`
---@field log_tables string[]?        # history tables the rollback leaves on purpose (rehearse)
---@field [integer] RunbookDeclaration  # phases, steps, checklists and watches, in order

---@class RunbookPhaseSpec
---@field transaction boolean?        # one transaction; each step in a savepoint
---@field timeout RunbookDuration?
---@field on_error RunbookOnError?
---@field description string?
---@field guard (RunbookGuard|RunbookGuard[])?  # asked before its first step; false skips the phase
---@field [integer] RunbookDeclaration  # its steps

---@class RunbookRetry
---@field attempts integer?           # in all, the first one included
---@field backoff ("fixed"|"exponential")?
---@field initial RunbookDuration?    # the first delay
---@field max RunbookDuration?        # the longest delay
---@field on (string|string[])?       # error classes, kinds or SQLSTATE patterns ("08*")

---@class RunbookConfirm
---@field [1] string                  # what the step destroys
---@field on_decline ("skip"|"fail")? # default "fail"

---@class RunbookStepSpec
---@field run fun(ctx: RunbookContext): any          # required; its result is audited and handed to verify
---@field verify (fun(ctx: RunbookContext, result: any))?  # raises (use check) to fail the step
---@field rollback (fun(ctx: RunbookContext))?       # undoes the step when a later step fails
---@field when (fun(ctx: RunbookContext): boolean|string)?  # false or a reason skips the step
---@field retry (RunbookRetry|integer)?
---@field timeout RunbookDuration?
---@field statement_timeout RunbookDuration?
---@field lock_timeout RunbookDuration?
---@field confirm (string|RunbookConfirm)?  # destructive: needs --yes or a typed yes
---@field on_error RunbookOnError?
---@field description string?
---@field idempotent boolean?         # running it twice does no harm (resume may re-run it)

---@class RunbookChecklistItem
---@field [1] string                  # what is true, or what a person confirms
---@field check (fun(ctx: RunbookContext): boolean, string?)?  # ok, detail
---@field manual string?              # how a person tells (asked on a terminal)

---@class RunbookChecklistSpec
---@field description string?
---@field on_error RunbookOnError?
---@field [integer] RunbookChecklistItem

---@alias RunbookCondition string|fun(m: table<string, any>, ctx: RunbookContext): boolean
---@alias RunbookAction "rollback"|"abort"|table|fun(ctx: RunbookContext, m: table<string, any>)

---@class RunbookWatchSpec
---@field every RunbookDuration|fun(ctx: RunbookContext): RunbookDuration      # sample period
---@field lasting RunbookDuration|fun(ctx: RunbookContext): RunbookDuration    # how long the watch lasts
---@field sample_timeout RunbookDuration?   # time limit of one sample
---@field metrics table<string, string|fun(ctx: RunbookContext): any>  # SQL returning one value, or a function
---@field description string?
---@field [integer] RunbookDeclaration  # its triggers, in order (a decision tree)

---@class RunbookTriggerSpec
---@field when RunbookCondition       # an expression over metric names ("error_rate > 0.25"), or a function
---@field after RunbookDuration?      # only from this long after the watch began
---@field before RunbookDuration?     # only until this long after the watch began
---@field sustained RunbookDuration?  # the condition must hold at every sample this long
---@field clear_when RunbookCondition?  # hysteresis: a fired trigger re-arms only then
---@field action RunbookAction        # "rollback", "abort", escalate{...}, alert{...}, investigate{...} or a function
---@field description string?

---@class RunbookDeclaration
---@class RunbookPhase: RunbookDeclaration
---@class RunbookStep: RunbookDeclaration
---@class RunbookWatch: RunbookDeclaration
---@class RunbookTrigger: RunbookDeclaration
---@class RunbookChecklist: RunbookDeclaration

--- Declares the file's runbook. Its dotted name mirrors its path below runbooks/:
--- `runbook "migration.centralized" { ... }` lives in runbooks/migration/centralized.lua.
---@param name string
---@return fun(spec: RunbookSpec): RunbookDeclaration
function runbook(name) end

--- A phase: steps run in order, optionally in one transaction (`transaction = true`).
---@param name string
---@return fun(spec: RunbookPhaseSpec): RunbookPhase
function phase(name) end

--- A step: `run` (required), `verify`, `rollback`, `when`, `retry`, `timeout`, `confirm` ...
---@param name string
---@return fun(spec: RunbookStepSpec): RunbookStep
function step(name) end

--- A checklist: items checked by a function or confirmed by a person; a phase of its own kind.
---@param name string
---@return fun(spec: RunbookChecklistSpec): RunbookChecklist
function checklist(name) end

--- A watch: samples metrics `every` period for `lasting`, and lets its triggers decide.
---@param name string
---@return fun(spec: RunbookWatchSpec): RunbookWatch
function watch(name) end

--- A trigger of a watch: the first whose condition holds acts.
---@param name string
---@return fun(spec: RunbookTriggerSpec): RunbookTrigger
function trigger(name) end

--- Fails the step (a check_failed error at the caller's line) when `cond` is false or nil;
--- returns `cond` otherwise. Extra arguments format the message (string.format).
---@generic T
---@param cond T
---@param message? string
---@param ... any
---@return T
function check(cond, message, ...) end
