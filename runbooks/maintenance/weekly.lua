-- Seed 001 (Migration Execution Guide), "Scheduled Maintenance - Weekly Tasks": VACUUM ANALYZE
-- the platform tables to reclaim space, then record every table's size (total, heap,
-- indexes) in the audit log, largest first. VACUUM cannot run inside a transaction, so this
-- runbook has none: each statement commits on its own.
-- Runs every Sunday at 04:00 UTC under `runbook schedule`; VACUUM waits for no long transaction
-- (the guard skips the run while one is open, saying so).
local guards = require "guards"
runbook "maintenance.weekly" {
  title = "Weekly maintenance: vacuum and table sizes",
  description = "VACUUM ANALYZE conversations, messages, feedback and usage_metrics, then log table sizes.",
  tags = { "maintenance", "weekly", "seed-001" },
  fixture = "platform.sql",
  lock = true,
  schedule = { cron = "0 4 * * sun", tz = "UTC", missed = "once" },
  guard = { guards.no_long_transactions("5m") },
  params = {
    top = { type = "integer", default = 20, doc = "how many of the largest tables to log" },
  },

  step "vacuum analyze" {
    timeout = "2h",
    run = function(ctx)
      for _, t in ipairs { "conversations", "messages", "feedback", "usage_metrics" } do  -- our names, not input
        ctx.db:exec("VACUUM ANALYZE public." .. t)
      end
    end,
  },
  step "table sizes" {
    run = function(ctx)
      local sizes = ctx.db:query([[
        SELECT tablename,
               pg_size_pretty(pg_total_relation_size(format('%I.%I', schemaname, tablename))) AS size,
               pg_size_pretty(pg_relation_size(format('%I.%I', schemaname, tablename))) AS table_size,
               pg_size_pretty(pg_total_relation_size(format('%I.%I', schemaname, tablename))
                              - pg_relation_size(format('%I.%I', schemaname, tablename))) AS index_size
        FROM pg_tables WHERE schemaname = 'public'
        ORDER BY pg_total_relation_size(format('%I.%I', schemaname, tablename)) DESC
        LIMIT $1]], ctx.params.top)
      for _, s in ipairs(sizes) do
        ctx.log(string.format("%-24s %10s  (table %s, indexes %s)", s.tablename, s.size, s.table_size, s.index_size))
      end
      audit.note("table sizes", { tables = sizes })
      return { tables = #sizes }
    end,
  },
}
