-- {{name}}: nightly maintenance. `runbook schedule` starts it when due (exactly once across
-- hosts), unless a guard says no. Written by `runbook new`; make it yours.
--   runbook check                             -- load and validate it
--   runbook run {{name}} --sandbox            -- try it now on a scratch PostgreSQL ({{fixture}})
--   runbook schedule --list                   -- when it runs next
local guards = require "guards"
local health = require "health"

runbook "{{name}}" {
  title = "Purge expired sessions and refresh statistics",
  description = "Deletes sessions expired longer than the retention, then analyzes the table.",
  tags = { "maintenance" },
  fixture = "{{fixture}}",
  lock = true,
  schedule = { cron = "0 3 * * *", tz = "UTC", missed = "skip" },  -- 03:00 UTC daily
  -- Asked before the first phase; a "no" skips the run (audited), it does not fail it.
  guard = { guards.no_long_transactions("5m"), guards.no_blocking_locks() },
  params = {
    retention_days = { type = "integer", default = 30, doc = "keep sessions this many days after they expire" },
  },

  phase "purge" {
    step "delete expired sessions" {
      run = function(ctx)
        local deleted = ctx.db:exec([[delete from sessions
                                      where expires_at < now() - make_interval(days => $1)]],
                                    ctx.params.retention_days)
        ctx.log(string.format("deleted %d expired sessions", deleted))
        return { deleted = deleted }
      end,
      timeout = "10m",
      statement_timeout = "5m",
      idempotent = true,     -- running it twice does no harm (resume may re-run it)
    },
  },

  phase "statistics" {
    step "analyze sessions" {
      run = function(ctx)
        ctx.db:exec("analyze sessions")
        return health.table_size(ctx.db, "sessions")
      end,
      idempotent = true,
    },
  },
}
