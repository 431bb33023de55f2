-- {{name}}: an incident playbook. Diagnosis first (read-only, always safe to run), then a fix
-- that asks before it changes anything; declining keeps the diagnosis. Written by `runbook new`.
--   runbook check                              -- load and validate it
--   runbook run {{name}} --sandbox             -- try it on a scratch PostgreSQL ({{fixture}})
--   runbook run {{name}} --target primary      -- asks before the fix (--yes answers for you)
runbook "{{name}}" {
  title = "Jobs stuck in running",
  description = "Finds jobs a dead worker left in 'running' and puts them back in the queue.",
  tags = { "incident" },
  fixture = "{{fixture}}",
  params = {
    stuck_after = { type = "duration", default = "15m", doc = "a job running longer than this is stuck" },
  },

  phase "diagnose" {
    step "count stuck jobs" {
      run = function(ctx)
        local stuck = ctx.db:query([[select id, kind, locked_at from jobs
                                     where state = 'running' and locked_at < now() - make_interval(secs => $1)
                                     order by locked_at]], ctx.params.stuck_after)
        for _, job in ipairs(stuck) do ctx.log(string.format("job %d (%s) running since %s", job.id, job.kind, job.locked_at)) end
        audit.note("stuck jobs", { count = #stuck })
        return { stuck = #stuck }
      end,
    },
  },

  phase "fix" {
    transaction = true,
    step "requeue stuck jobs" {
      -- Declined (or no terminal and no --yes): the step is skipped and the run goes on.
      confirm = { "Puts stuck jobs back in the queue", on_decline = "skip" },
      when = function(ctx)
        local n = ctx.db:scalar([[select count(*) from jobs where state = 'running'
                                  and locked_at < now() - make_interval(secs => $1)]], ctx.params.stuck_after)
        return n > 0 or "no stuck jobs"
      end,
      run = function(ctx)
        return ctx.db:exec([[update jobs set state = 'queued', locked_at = null
                             where state = 'running' and locked_at < now() - make_interval(secs => $1)]],
                           ctx.params.stuck_after)
      end,
      verify = function(ctx)
        check(ctx.db:scalar([[select count(*) from jobs where state = 'running'
                              and locked_at < now() - make_interval(secs => $1)]], ctx.params.stuck_after) == 0,
              "jobs are still stuck")
      end,
    },
  },

  phase "report" {
    step "queue now" {
      run = function(ctx)
        local rows = ctx.db:query("select state, count(*) as n from jobs group by state order by state")
        for _, r in ipairs(rows) do ctx.log(string.format("%s: %d", r.state, r.n)) end
        return rows
      end,
    },
  },
}
