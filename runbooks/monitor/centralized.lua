-- Seed 000 (Error Handling Guide & Rollback Procedures), "Monitoring and Alerting" and
-- "Emergency Contact and Escalation", after migration.centralized:
--  * 1. Health Check Functions: check_database_health() (centralized_health.sql), run once and
--    its verdicts (HEALTHY / WARNING / UNHEALTHY) noted;
--  * 2. Error Rate Monitoring: a watch over the error rate of the bot's responses in the last
--    hour, the guide's window; above 25% it alerts at once (Level 1, automated alerts), and if
--    it stays above for 15 minutes it escalates (Level 2, manual investigation, potential
--    rollback); the escalation policy takes it to Level 3 after an hour unacknowledged.
--
-- The config this needs (runbook.lua), for the alerts and the escalation to reach people:
--   channels = { team = { type = "slack", webhook = secret "SLACK_WEBHOOK_URL" },
--                oncall = { type = "pagerduty", routing_key = secret "PD_ROUTING_KEY" },
--                dba = { type = "email", ... } },
--   default_channels = { "team" },              -- where the Level 1 alert goes
--   escalation = { database = { levels = {
--     { after = "0m",  notify = { "team" } },              -- Level 1: 0-15 minutes
--     { after = "15m", notify = { "oncall" } },            -- Level 2: 15-60 minutes
--     { after = "60m", notify = { "oncall", "dba" } },     -- Level 3: 1+ hours
--   } } },
--   default_escalation = "database",
-- Without channels the alert is shown and audited as "not sent"; without a policy the
-- escalation is a watch.error record naming what is missing. The watch goes on either way.
runbook "monitor.centralized" {
  title = "Health and error rate of the centralized Slack bot database",
  tags = { "monitor", "seed-000" },
  fixture = "centralized.sql",
  params = {
    watch_for = { type = "duration", default = "2h", doc = "how long to watch the error rate (Level 3 starts after 1 hour)" },
    every     = { type = "duration", default = "1m", doc = "how often to sample it" },
  },

  phase "health" {
    step "health function" {
      run = function(ctx) ctx.db:script("centralized_health.sql") end,
    },
    step "check_database_health()" {
      run = function(ctx)
        local verdicts = {}
        for _, row in ipairs(ctx.db:query("SELECT component, status, details FROM check_database_health()")) do
          ctx.log(string.format("%-13s %-9s %s", row.component, row.status, row.details))
          verdicts[row.component] = { status = row.status, details = row.details }
        end
        audit.note("database health", verdicts)
        return verdicts
      end,
    },
  },

  watch "error rate" {
    every = function(ctx) return ctx.params.every end, lasting = function(ctx) return ctx.params.watch_for end,
    metrics = {
      -- percent of the last hour's bot responses that failed (NULL: no responses)
      error_rate = [[SELECT count(*) FILTER (WHERE error_message IS NOT NULL) * 100.0 / NULLIF(count(*), 0)
                     FROM bot_responses WHERE created_at >= now() - interval '1 hour']],
    },
    trigger "Level 2: above 25% for 15 minutes" {
      when = "error_rate > 25", sustained = "15m", clear_when = "error_rate <= 25",
      action = escalate { level = 2, severity = "critical", cause = "error rate",
                          summary = "Bot error rate above 25% for 15 minutes: investigate, consider rollback" },
    },
    trigger "Level 1: above 25%" {
      when = "error_rate > 25", clear_when = "error_rate <= 25",
      action = alert { severity = "error", summary = "HIGH_ERROR_RATE: more than 25% of bot responses failed in the last hour" },
    },
  },
}
