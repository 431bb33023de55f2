-- Communication templates: fill {{name}} placeholders, refusing to send a half-filled message.
--   local template = require "template"
--   local text = template.render(template.rollback_notification, { issue = "...", minutes = 4 })
local template = {}

--- Replaces every {{name}} in `text` with tostring(vars[name]). A placeholder with no value
--- is an error naming it, so no message goes out with "{{eta}}" in it.
function template.render(text, vars)
  vars = vars or {}
  local missing = {}
  local out = text:gsub("{{%s*([%w_]+)%s*}}", function(name)
    local v = vars[name]
    if v == nil then
      missing[#missing + 1] = name
      return "{{" .. name .. "}}"
    end
    return tostring(v)
  end)
  if #missing > 0 then
    error({ kind = "usage", class = "template", message = "template needs values for: " .. table.concat(missing, ", ") }, 2)
  end
  return out
end

-- The templates of the seeds' communication plans.
template.migration_success = [[
MIGRATION SUCCESS: {{name}}
- Migration completed in {{minutes}} minutes
- All constraints active and healthy
- Operations restored
- No data integrity issues detected
- Monitoring continues for {{watch_hours}}h]]

template.rollback_notification = [[
ROLLBACK EXECUTED: {{name}}
- Issue: {{issue}}
- Rollback completed in {{minutes}} minutes
- System restored to previous state
- Root cause analysis in progress]]

template.critical_issue = [[
CRITICAL: Migration Issue Requires Immediate Attention
- Problem: {{problem}}
- Impact: {{impact}}
- Action Needed: {{action}}
- ETA for Resolution: {{eta}}
- Contact: {{contact}}]]

template.recovery_completed = [[
DATABASE RECOVERY COMPLETED
Duration: {{duration}}
Affected: {{affected}}
Data Loss: {{data_loss}}
Next Steps:
1. Monitor error rates next 4 hours
2. User communication sent
3. Support team briefed on recovery process]]

return template
