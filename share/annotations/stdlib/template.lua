---@meta template
-- stdlib template: communication templates with {{name}} placeholders.

local template = {}

--- The values a run supplies: runbook, name, run_id, target, duration, minutes, and after a
--- failure failed_step, error, issue, problem.
---@param ctx RunbookContext
---@return table<string, any>
function template.context(ctx) end

--- Fills every {{name}} from `vars`, else from the run (`ctx`); a placeholder with no value
--- is an error naming it.
---@param text string
---@param vars? table<string, any>
---@param ctx? RunbookContext
---@return string
function template.render(text, vars, ctx) end

---@type string
template.migration_success = ""
---@type string
template.rollback_notification = ""
---@type string
template.critical_issue = ""
---@type string
template.recovery_completed = ""
---@type string
template.user_data_loss = ""
---@type string
template.recovery_started = ""

return template
