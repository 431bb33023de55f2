-- {{name}}: a migration in three phases: checks before, the change in one transaction (each
-- step with a verify and a rollback), checks after. Written by `runbook new`; make it yours.
--   runbook check                        -- load and validate it
--   runbook run {{name}} --sandbox       -- try it on a scratch PostgreSQL seeded from {{fixture}}
--   runbook rehearse {{name}} --sandbox  -- prove the rollback puts everything back
--   runbook run {{name}} --target primary
runbook "{{name}}" {
  title = "Add a status column to accounts",
  description = "Adds accounts.status and fills it in, in one transaction.",
  tags = { "migration" },
  fixture = "{{fixture}}",   -- the schema --sandbox starts from (edit it to match production)
  lock = true,               -- one run at a time per database, across hosts
  params = {
    status = { type = "string", default = "active", doc = "the status existing accounts get" },
  },

  phase "preflight" {
    step "accounts table exists" {
      run = function(ctx)
        check(ctx.db:scalar("select to_regclass('public.accounts') is not null"), "table accounts not found")
        return { accounts = ctx.db:scalar("select count(*) from accounts") }  -- audited
      end,
    },
  },

  phase "migrate" {
    transaction = true,      -- one transaction; each step in a savepoint
    step "add status column" {
      run = function(ctx)
        ctx.db:exec("alter table accounts add column status text")
      end,
      verify = function(ctx)
        check(ctx.db:scalar([[select count(*) from information_schema.columns
                              where table_name = 'accounts' and column_name = 'status']]) == 1,
              "accounts.status was not added")
      end,
      -- Runs when a later step fails (in reverse order): undo what this step did.
      rollback = function(ctx)
        ctx.db:exec("alter table accounts drop column if exists status")
      end,
      lock_timeout = "5s",   -- never queue behind a long transaction holding the table
      retry = { attempts = 3, backoff = "exponential", initial = "1s", on = { "lock_not_available" } },
    },
    step "fill in status" {
      run = function(ctx)
        -- Parameters are bound ($1), never spliced into the SQL.
        return ctx.db:exec("update accounts set status = $1 where status is null", ctx.params.status)
      end,
      verify = function(ctx, updated)  -- `updated`: what run returned
        local missing = ctx.db:scalar("select count(*) from accounts where status is null")
        check(missing == 0, "%d accounts still have no status (updated %d)", missing, updated)
      end,
      -- No rollback of its own: dropping the column (the step before) undoes it.
    },
  },

  phase "after" {
    step "every account has a status" {
      run = function(ctx)
        local rows = ctx.db:query("select status, count(*) as n from accounts group by status order by status")
        for _, r in ipairs(rows) do ctx.log(string.format("%s: %d accounts", r.status, r.n)) end
        return rows
      end,
    },
  },
}
