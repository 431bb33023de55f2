-- {{name}}: a watch over live metrics. Every sample, its triggers are asked in order and the
-- first whose condition holds acts (a decision tree); the watch ends after `lasting`.
-- Written by `runbook new`; make it yours.
--   runbook check                             -- load and validate it
--   runbook show {{name}}                     -- the decision tree (--format mermaid draws it)
--   runbook run {{name}} --sandbox            -- watch a scratch PostgreSQL ({{fixture}}) for a few seconds
runbook "{{name}}" {
  title = "Watch the job queue",
  description = "Alerts when the queue backs up; escalates when it stays backed up.",
  tags = { "monitor" },
  fixture = "{{fixture}}",
  params = {
    lasting = { type = "duration", default = "5s", doc = "how long to watch (30m after a deploy)" },
  },

  watch "job queue" {
    every = "1s",                                        -- 30s in production
    lasting = function(ctx) return ctx.params.lasting end,
    metrics = {
      queued = [[select count(*) from jobs where state = 'queued']],
      oldest_minutes = [[select coalesce(extract(epoch from now() - min(created_at)) / 60, 0)
                         from jobs where state = 'queued']],
    },
    -- Conditions are expressions over the metrics (kept as written for `show` and the audit).
    trigger "stalled" {
      when = "queued > 0 and oldest_minutes > 60", sustained = "10m",
      action = escalate { level = 1, summary = "the job queue has not moved for an hour" },
    },
    trigger "backlog" {
      when = "queued > 1000", clear_when = "queued < 100",
      action = alert { severity = "warning", summary = "more than 1000 jobs queued" },
    },
  },
}
