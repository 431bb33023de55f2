-- Communication templates: fill {{name}} placeholders, refusing to send a half-filled message.
--   local template = require "template"
--   local text = template.render(template.rollback_notification, { issue = "...", minutes = 4 })
--   local text = template.render(template.rollback_notification, {}, ctx)   -- values from the run
local template = {}

--- "2h 15m", "4m 12s", "12s": a duration in seconds as people write it.
local function human(seconds)
  seconds = math.floor(seconds + 0.5)
  local h, m, s = math.floor(seconds / 3600), math.floor(seconds % 3600 / 60), seconds % 60
  if h > 0 then return string.format("%dh %dm", h, m) end
  if m > 0 then return string.format("%dm %ds", m, s) end
  return string.format("%ds", s)
end

--- The values a run's context supplies to templates: `runbook`, `name` (the runbook's title,
--- else its name), `run_id`, `target`, `duration` ("4m 12s" since the run began), `minutes`
--- (the same in minutes, one decimal), and after a failure (in rollback handlers)
--- `failed_step`, `error`, and `issue` / `problem` (the error again, as the seeds' templates
--- call it).
function template.context(ctx)
  local v = {}
  if type(ctx) ~= "table" then return v end
  v.runbook = ctx.runbook
  v.name = ctx.title or ctx.runbook
  v.run_id = ctx.run
  v.target = ctx.target
  if type(ctx.elapsed) == "number" then
    v.duration = human(ctx.elapsed)
    v.minutes = string.format("%.1f", ctx.elapsed / 60)
  end
  if type(ctx.failure) == "table" then
    v.failed_step = ctx.failure.step
    v.error = ctx.failure.error
    v.issue = ctx.failure.error
    v.problem = ctx.failure.error
  end
  return v
end

--- Replaces every {{name}} in `text` with tostring(vars[name]), else with the value the run's
--- context `ctx` supplies (template.context). A placeholder with no value is an error naming
--- it, so no message goes out with "{{eta}}" in it.
function template.render(text, vars, ctx)
  vars = vars or {}
  local from_ctx = template.context(ctx)
  local missing = {}
  local out = text:gsub("{{%s*([%w_]+)%s*}}", function(name)
    local v = vars[name]
    if v == nil then v = from_ctx[name] end
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

-- Seed 004's technical-team alert.
template.recovery_completed = [[
DATABASE RECOVERY COMPLETED

Duration: {{duration}}
Affected: {{affected}}
Data Loss: {{data_loss}}

Recovery Summary:
{{recovery_summary}}

Next Steps:
1. Monitor error rates next 4 hours
2. User communication sent
3. Support team briefed on recovery process
4. Post-mortem scheduled for {{postmortem}}

On-call: {{oncall}}]]

-- Seed 004's user notification after a data loss ("Communication Templates"), sent by the
-- support team to the participants.
template.user_data_loss = [[
Subject: {{platform}} - Service Update

Dear {{audience}},

We experienced a technical issue that may have affected your recent submissions or points. Our team has restored the system and recovered most data.

What we've done:
- Restored your profile and basic information
- Recovered approved submissions {{recovered_window}}
- Recalculated your leaderboard position

What you may need to do:
- Check your dashboard for missing submissions
- Resubmit any evidence {{resubmit_window}}
- Contact support if your points seem incorrect

We apologize for the inconvenience and appreciate your patience.

Best regards,
{{team}}]]

-- The start of a recovery, in the shape of seed 004's technical-team alert (the guide has only
-- the completion; its SLAs ask for the initial response within 30 minutes and communication
-- within the hour).
template.recovery_started = [[
DATABASE RECOVERY STARTED: {{name}}

Target: {{target}}
Reason: {{reason}}
Recovery: {{method}}
Run: {{run_id}}

Next update when the recovery completes (resolution SLA: 4 hours).

On-call: {{oncall}}]]

return template
