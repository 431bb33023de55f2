-- Seed 003 (Organizations Import Fix - Monitoring & Rollback Plan): the fix for the importer's
-- PostgreSQL 42P10 ("no unique or exclusion constraint matching the ON CONFLICT
-- specification"). Baselines first, then the two unique indexes built CONCURRENTLY (outside
-- any transaction, so imports keep running), the plan's constraint health checks, an import
-- with ON CONFLICT that must now succeed, and the success message of its communication
-- templates. A failure drops the indexes again (the plan's rollback script) and logs the
-- rollback notification.
local template = require "template"
local health = require "health"

local EXACT = "organizations_exact_name_type_active"
local CASELESS = "unique_organization_name_type_ci"
local started = os.time()

local function minutes_since_start() return string.format("%.1f", os.difftime(os.time(), started) / 60) end

-- A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind: drop it, then fail.
local function create_index_concurrently(ctx, name, ddl)
  local ok, err = pcall(ctx.db.exec, ctx.db, ddl)
  if not ok then
    ctx.db:exec("DROP INDEX CONCURRENTLY IF EXISTS " .. name)  -- our names, not input
    error(err, 0)
  end
end

local function baseline(ctx)
  local row = ctx.db:query([[SELECT count(*) AS total_records,
                                    count(*) FILTER (WHERE deleted_at IS NULL) AS active_records,
                                    pg_total_relation_size('organizations')::float8 AS table_bytes
                             FROM organizations]])[1]
  local plan = ctx.db:scalar([[EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM organizations
                               WHERE name ILIKE 'test%' AND type = 'customer' AND deleted_at IS NULL]])
  row.query_ms = plan[1]["Execution Time"]
  row.indexes = ctx.db:query([[SELECT indexrelname AS name, pg_relation_size(indexrelid)::float8 AS bytes
                               FROM pg_stat_user_indexes WHERE relname = 'organizations' ORDER BY 1]])
  return row
end

runbook "migration.organizations_import_fix" {
  title = "Organizations import fix (42P10)",
  description = "Adds the unique indexes the importer's ON CONFLICT needs, without blocking writes, "
             .. "and proves imports work again.",
  tags = { "migration", "seed-003" },
  fixture = "organizations_import_fix.sql",
  lock = true,
  params = {
    watch_hours = { type = "integer", default = 24, doc = "how long monitoring continues, for the success message" },
  },

  phase "baseline" {
    step "capture baselines" {
      run = function(ctx)
        check(health.table_exists(ctx.db, "organizations"), "table organizations not found")
        check(health.column_exists(ctx.db, "organizations", "deleted_at"), "organizations has no deleted_at column")
        local b = baseline(ctx)
        audit.note("organizations baseline", b)
        return b
      end,
    },
    step "no blocked sessions" {
      run = function(ctx)
        local blocked = health.blocking_locks(ctx.db)
        check(#blocked == 0, "%d sessions are waiting on locks (pid %s is blocked by %s): "
              .. "building indexes now would wait behind them", #blocked,
              tostring(blocked[1] and blocked[1].blocked_pid), tostring(blocked[1] and blocked[1].blocking_pid))
      end,
    },
  },

  phase "constraints" {
    -- No transaction: CREATE INDEX CONCURRENTLY cannot run inside one.
    step "exact-match unique index" {
      run = function(ctx)
        create_index_concurrently(ctx, EXACT, "CREATE UNIQUE INDEX CONCURRENTLY " .. EXACT
          .. " ON organizations (name, type) WHERE deleted_at IS NULL")
      end,
      rollback = function(ctx)
        ctx.db:exec("DROP INDEX CONCURRENTLY IF EXISTS " .. EXACT)
        check(not health.index_exists(ctx.db, EXACT), "Rollback FAILED: %s still exists", EXACT)
        -- This is the last handler to run: the rollback is complete.
        ctx.log(template.render(template.rollback_notification, {
          name = "Organizations Import Fix",
          issue = "see `runbook log " .. ctx.run .. "`",
          minutes = minutes_since_start(),
        }))
      end,
    },
    step "case-insensitive unique index" {
      run = function(ctx)
        create_index_concurrently(ctx, CASELESS, "CREATE UNIQUE INDEX CONCURRENTLY " .. CASELESS
          .. " ON organizations (lower(trim(name)), type) WHERE deleted_at IS NULL")
      end,
      rollback = function(ctx) ctx.db:exec("DROP INDEX CONCURRENTLY IF EXISTS " .. CASELESS) end,
    },
  },

  phase "verify" {
    step "constraint health" {
      run = function(ctx)
        for _, name in ipairs { EXACT, CASELESS } do
          check(ctx.db:scalar([[SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                                WHERE c.relname = $1 AND i.indisvalid AND i.indisunique]], name) == 1,
                "unique index %s is missing or invalid", name)
        end
        local duplicates = ctx.db:scalar([[SELECT count(*) FROM (SELECT 1 FROM organizations WHERE deleted_at IS NULL
                                           GROUP BY lower(trim(name)), type HAVING count(*) > 1) d]])
        check(duplicates == 0, "%d groups of active organizations share a name and type", duplicates)
      end,
    },
    step "import with ON CONFLICT" {
      -- What the importer does, with rows that already exist: before the fix this raised
      -- 42P10; now the conflicts are absorbed and nothing changes.
      run = function(ctx)
        local ok, inserted = pcall(ctx.db.exec, ctx.db, [[
          INSERT INTO organizations (name, type)
          SELECT name, type FROM organizations WHERE deleted_at IS NULL ORDER BY id LIMIT 100
          ON CONFLICT (name, type) WHERE deleted_at IS NULL DO NOTHING]])
        if not ok then
          check(inserted.sqlstate ~= "42P10", "imports still fail with 42P10: %s", tostring(inserted))
          error(inserted, 0)
        end
        check(inserted == 0, "the re-import inserted %d rows that already existed", inserted)
      end,
    },
  },

  phase "report" {
    step "success message" {
      run = function(ctx)
        local after = baseline(ctx)
        audit.note("organizations after migration", after)
        ctx.log(template.render(template.migration_success, {
          name = "Organizations Import Fix",
          minutes = minutes_since_start(),
          watch_hours = ctx.params.watch_hours,
        }))
      end,
    },
  },
}
