-- Seed 003 (Organizations Import Fix - Monitoring & Rollback Plan), "Long-term Monitoring (30
-- days)", Weekly Health Checks, every Monday at 06:00 UTC under `runbook schedule`: the import
-- success rate trend (per day, against the plan's >95% target), the database constraint health
-- (the plan's check_organizations_constraints(): both unique indexes valid, no duplicates), and
-- the performance baseline comparison (the plan's query, timed several times, against the
-- median migration.organizations_import_fix recorded in its "organizations baseline" note:
-- --param baseline_ms=...). "User feedback analysis" is not in the database: not here.
-- Read-only: a report in the audit (notes), sent on the config's default channels. A broken
-- constraint fails the run (an incident, when an escalation policy applies); a low success
-- rate or a slower query is a finding.
local review = require "import_review"

runbook "review.organizations_import_weekly" {
  title = "Weekly health check of the organizations import fix",
  tags = { "review", "weekly", "seed-003" },
  fixture = "organizations_import.sql",
  schedule = { cron = "0 6 * * mon", tz = "UTC", missed = "once" },
  params = {
    days = { type = "integer", default = 7, doc = "how many days the trend covers" },
    target = { type = "number", default = 0.95, doc = "the plan's import success rate target" },
    baseline_ms = { type = "number", default = 0,
                    doc = "the baseline query's median before the migration (its 'organizations baseline' note); 0: not compared" },
    tolerance = { type = "number", default = 0.10, doc = "the largest slowdown that is no finding" },
    runs = { type = "integer", default = 5, doc = "how many times the query is timed" },
  },

  step "import success rate trend" {
    run = function(ctx)
      local days = ctx.db:query([[
        SELECT operation_start::date::text AS day, sum(records_attempted) AS attempted,
               sum(records_successful) AS successful,
               round(sum(records_successful)::numeric / nullif(sum(records_attempted), 0), 4)::float8 AS success_rate
        FROM import_monitoring
        WHERE operation_start >= date_trunc('day', localtimestamp) - ($1::int - 1) * interval '1 day'
        GROUP BY 1 ORDER BY 1]], ctx.params.days)
      local below = {}
      for _, d in ipairs(days) do
        if d.success_rate ~= db.null and d.success_rate < ctx.params.target then below[#below + 1] = d.day end
      end
      if #below > 0 then
        review.finding(string.format("import success rate under %.0f%% on %s", ctx.params.target * 100, table.concat(below, ", ")))
      end
      local trend = { days = days, below_target = below, target = ctx.params.target }
      audit.note("import success rate trend", trend)
      return { days = #days, below_target = below }
    end,
  },
  step "constraint health" {
    run = function(ctx) return review.constraint_health(ctx) end,
  },
  step "performance baseline comparison" {
    run = function(ctx)
      return review.performance(ctx, ctx.params.baseline_ms, ctx.params.tolerance, ctx.params.runs)
    end,
  },
  step "report" {
    run = function(ctx) return review.send(ctx, "weekly") end,
  },
}
