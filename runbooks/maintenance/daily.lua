-- Seed 001 (Migration Execution Guide), "Scheduled Maintenance - Daily Tasks": refresh the
-- summary views without blocking their readers (CONCURRENTLY, which needs a unique index on
-- the view and a populated view), then update the statistics of the busiest tables.
-- Runs every day at 03:00 UTC under `runbook schedule`; a long transaction or a blocked lock
-- on the database postpones it (the guard says why; the run is skipped, not failed).
local guards = require "guards"
local VIEWS = { "message_feedback_summary", "monthly_usage_summary" }

runbook "maintenance.daily" {
  title = "Daily maintenance: refresh summary views, update statistics",
  description = "REFRESH MATERIALIZED VIEW CONCURRENTLY for the feedback and usage summaries, "
             .. "then ANALYZE messages and usage_metrics.",
  tags = { "maintenance", "daily", "seed-001" },
  fixture = "platform.sql",
  lock = true,
  schedule = { cron = "0 3 * * *", tz = "UTC", missed = "once" },
  guard = { guards.no_long_transactions("5m"), guards.no_blocking_locks() },

  phase "refresh" {
    step "views can refresh concurrently" {
      run = function(ctx)
        for _, mv in ipairs(VIEWS) do
          local v = ctx.db:query([[SELECT ispopulated, (SELECT count(*) FROM pg_index i
                                     WHERE i.indrelid = format('public.%I', matviewname)::regclass
                                       AND i.indisunique AND i.indpred IS NULL) AS unique_indexes
                                   FROM pg_matviews WHERE schemaname = 'public' AND matviewname = $1]], mv)[1]
          check(v, "materialized view %s does not exist", mv)
          check(v.unique_indexes > 0, "%s has no unique index: REFRESH ... CONCURRENTLY needs one", mv)
          check(v.ispopulated, "%s was never populated: refresh it once without CONCURRENTLY", mv)
        end
      end,
    },
    step "refresh summary views" {
      lock_timeout = "30s",
      retry = { attempts = 3, backoff = "exponential", initial = "10s", on = { "lock_not_available" } },
      run = function(ctx)
        local rows = {}
        for _, mv in ipairs(VIEWS) do  -- our names, not input
          ctx.db:exec("REFRESH MATERIALIZED VIEW CONCURRENTLY public." .. mv)
          rows[mv] = ctx.db:scalar("SELECT count(*) FROM public." .. mv)
        end
        audit.note("summary views refreshed", rows)
        return rows
      end,
    },
  },

  phase "statistics" {
    step "analyze" {
      run = function(ctx)
        ctx.db:exec("ANALYZE public.messages")
        ctx.db:exec("ANALYZE public.usage_metrics")
      end,
    },
  },
}
