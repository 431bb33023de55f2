-- Seed 004 (Database Troubleshooting Guide), "Migration Problems - Migration Failures": a Prisma
-- migration stuck in the failed state (a _prisma_migrations row with finished_at and
-- rolled_back_at NULL) blocks every later `pnpm db:migrate`. Shows the migration history and the
-- failed rows with their logs, then tries each failed migration's SQL (prisma/migrations/NAME/
-- migration.sql beside this file) in a transaction that is always rolled back, which tells
-- whether it would apply again or what it left half-applied. The fix is the guide's
-- `pnpm db:migrate:resolve --rolled-back NAME`: the row is copied to
-- _prisma_migrations_backup, then marked rolled back. Re-applying is the application's
-- `pnpm db:migrate`; the last step says what has to happen first.
local FAILED = "finished_at IS NULL AND rolled_back_at IS NULL"

local function failed(ctx)
  return ctx.db:query("SELECT id, migration_name, started_at, applied_steps_count, logs FROM _prisma_migrations WHERE "
                      .. FAILED .. " ORDER BY started_at")
end

-- The migration's SQL, run in a transaction that is rolled back whatever happens: nil when it
-- applies cleanly, else the error (the first object it finds already there, or missing).
local function dry_run(ctx, name)
  -- Only the files shipped beside this runbook: a parameter never leads to SQL elsewhere.
  check(not (ctx.params.migrations_dir .. "/" .. name):find("%.%.") and not ctx.params.migrations_dir:find("^/"),
        "migrations_dir must be a directory below this runbook's, not %s", ctx.params.migrations_dir)
  local file = ctx.params.migrations_dir .. "/" .. name .. "/migration.sql"
  local ok, err = pcall(ctx.db.transaction, ctx.db, function()
    ctx.db:script(file)
    error({ dry_run = true })
  end)
  if ok or (type(err) == "table" and err.dry_run) then return nil, file end
  return err, file
end

runbook "troubleshoot.migrations" {
  title = "A migration failed and is stuck",
  description = "Failed Prisma migrations, what they left half-applied, marking them rolled back, re-apply guidance.",
  tags = { "troubleshoot", "migration", "seed-004" },
  fixture = "migrations.sql",
  lock = true,
  params = {
    migrations_dir = { type = "string", default = "prisma/migrations",
                       doc = "Prisma's migrations directory, relative to this runbook (NAME/migration.sql)" },
  },

  phase "diagnose" {
    step "migration history" {
      run = function(ctx)
        check(ctx.db:scalar("SELECT to_regclass('_prisma_migrations') IS NOT NULL"), "no _prisma_migrations table: not a Prisma database")
        local history = ctx.db:query([[
          SELECT migration_name, started_at, finished_at, rolled_back_at, applied_steps_count,
                 CASE WHEN rolled_back_at IS NOT NULL THEN 'rolled back' WHEN finished_at IS NULL THEN 'FAILED'
                      ELSE 'applied' END AS state
          FROM _prisma_migrations ORDER BY finished_at DESC NULLS FIRST LIMIT 10]])
        for _, m in ipairs(history) do ctx.log(string.format("%-12s %s", m.state, m.migration_name)) end
        audit.note("migration history", { migrations = history })
        return { shown = #history }
      end,
    },
    step "failed migrations" {
      run = function(ctx)
        local rows = failed(ctx)
        local report = {}
        for _, m in ipairs(rows) do
          local err, file = dry_run(ctx, m.migration_name)
          local r = { migration = m.migration_name, started_at = m.started_at, applied_steps = m.applied_steps_count,
                      logs = m.logs, file = file }
          if err == nil then
            r.reapply = "applies cleanly"
          elseif type(err) == "table" and err.kind == "io" then
            r.reapply = "unknown: no migration file"
          else
            r.reapply = "fails"
            r.reapply_error = type(err) == "table" and err.message or tostring(err)
            r.half_applied = type(err) == "table" and (err.class == "duplicate_table" or err.class == "duplicate_object"
                             or err.class == "duplicate_column") or false
          end
          ctx.log(string.format("FAILED %s: re-applying %s%s", m.migration_name, r.reapply,
                                r.reapply_error and (": " .. r.reapply_error) or ""))
          report[#report + 1] = r
        end
        audit.note("failed migrations", { count = #report, migrations = report })
        return { failed = #report }
      end,
    },
  },

  phase "resolve" {
    transaction = true,
    step "mark failed migrations rolled back" {
      when = function(ctx) return #failed(ctx) > 0 or "no failed migration" end,
      confirm = { "Marks every failed migration rolled back (prisma migrate resolve --rolled-back)", on_decline = "skip" },
      run = function(ctx)
        ctx.db:exec([[CREATE TABLE IF NOT EXISTS _prisma_migrations_backup (
                        LIKE _prisma_migrations, run TEXT NOT NULL, backed_up_at TIMESTAMPTZ NOT NULL DEFAULT now())]])
        local saved = ctx.db:exec("INSERT INTO _prisma_migrations_backup SELECT m.*, $1 FROM _prisma_migrations m WHERE "
                                  .. FAILED, ctx.run)
        local names = ctx.db:query("UPDATE _prisma_migrations SET rolled_back_at = now() WHERE " .. FAILED
                                   .. " RETURNING migration_name")
        check(saved == #names, "backed up %d failed migrations but marked %d", saved, #names)
        audit.note("migrations marked rolled back", { count = #names, migrations = names, backup = "_prisma_migrations_backup" })
        return { marked = #names }
      end,
      rollback = function(ctx)
        ctx.db:exec([[UPDATE _prisma_migrations m SET rolled_back_at = b.rolled_back_at
                      FROM _prisma_migrations_backup b WHERE b.run = $1 AND b.id = m.id]], ctx.run)
        ctx.db:exec("DELETE FROM _prisma_migrations_backup WHERE run = $1", ctx.run)
        if ctx.db:scalar("SELECT count(*) FROM _prisma_migrations_backup") == 0 then  -- made by this run
          ctx.db:exec("DROP TABLE _prisma_migrations_backup")
        end
      end,
    },
  },

  phase "next steps" {
    step "re-apply guidance" {
      run = function(ctx)
        local advice = {}
        -- Migrations with no finished row (Prisma adds a new row when it applies one again).
        for _, m in ipairs(ctx.db:query([[SELECT migration_name, bool_or(rolled_back_at IS NULL) AS failed
                                          FROM _prisma_migrations GROUP BY migration_name
                                          HAVING bool_and(finished_at IS NULL) ORDER BY min(started_at)]])) do
          local name, text = m.migration_name
          local err = dry_run(ctx, name)
          if m.failed then
            text = "still marked failed: resolve it first (pnpm db:migrate:resolve --rolled-back " .. name .. ")"
          elseif err == nil then
            text = "applies cleanly: run pnpm db:migrate"
          elseif type(err) == "table" and err.kind == "io" then
            text = "no migration file here: check that it applies, then pnpm db:migrate"
          else
            text = "would fail (" .. (type(err) == "table" and err.message or tostring(err)) .. "): drop what it left "
                .. "half-applied, then pnpm db:migrate; or finish it by hand and pnpm db:migrate:resolve --applied " .. name
          end
          ctx.log(name .. ": " .. text)
          advice[#advice + 1] = { migration = name, advice = text }
        end
        audit.note("re-apply guidance", { migrations = advice })
        return { pending = #advice }
      end,
    },
  },
}
