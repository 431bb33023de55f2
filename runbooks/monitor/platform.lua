-- Seed 001 (Migration Execution Guide), Post-Migration Tasks 5. "Set Up Monitoring": its three
-- monitoring queries -- daily active users, feedback sentiment, token usage by tenant -- as
-- the metrics of a watch, sampled every `every` for `watch_for` (every sample is audited, so
-- the audit log is the dashboard), with alerts when sentiment turns negative and when a
-- tenant's tokens of the last 7 days pass `tenant_token_budget`.
runbook "monitor.platform" {
  title = "Watch the AI Assistant Platform's usage and feedback",
  tags = { "monitor", "seed-001" },
  fixture = "platform.sql",
  params = {
    watch_for = { type = "duration", default = "24h", doc = "how long to watch" },
    every = { type = "duration", default = "5m", doc = "how often to sample" },
    min_feedback = { type = "integer", default = 10, doc = "ratings in the last 24 hours needed to judge sentiment" },
    min_avg_rating = { type = "number", default = 0, doc = "alert when the last 24 hours' average rating (-1..1) is below" },
    tenant_token_budget = { type = "integer", default = 1000000, doc = "alert when a tenant used more tokens in 7 days" },
  },

  watch "usage and feedback" {
    every = function(ctx) return ctx.params.every end, lasting = function(ctx) return ctx.params.watch_for end,
    metrics = {
      -- "Daily active users", today's
      active_users = [[SELECT count(DISTINCT user_id) FROM usage_metrics WHERE date = CURRENT_DATE]],
      -- "Feedback sentiment over time", over the last 24 hours
      feedback = [[SELECT count(*) FROM feedback WHERE created_at > now() - interval '24 hours']],
      avg_rating = [[SELECT round(avg(rating), 2)::float8 FROM feedback WHERE created_at > now() - interval '24 hours']],
      negative = [[SELECT count(*) FILTER (WHERE rating = -1) FROM feedback WHERE created_at > now() - interval '24 hours']],
      -- "Token usage by tenant", the busiest tenant of the last 7 days
      top_tenant_tokens = [[SELECT coalesce(max(tokens), 0) FROM (SELECT sum(total_tokens) AS tokens FROM usage_metrics
                            WHERE date >= CURRENT_DATE - 7 GROUP BY tenant_id) t]],
    },
    trigger "sentiment turned negative" {
      when = function(m, ctx)
        return m.feedback ~= nil and m.feedback >= ctx.params.min_feedback
           and m.avg_rating ~= nil and m.avg_rating < ctx.params.min_avg_rating
      end,
      action = alert { severity = "warning", summary = "Feedback sentiment turned negative over the last 24 hours" },
    },
    trigger "tenant over token budget" {
      when = function(m, ctx) return m.top_tenant_tokens ~= nil and m.top_tenant_tokens > ctx.params.tenant_token_budget end,
      action = alert { severity = "warning", summary = "A tenant used more tokens in 7 days than its budget" },
    },
  },
}
