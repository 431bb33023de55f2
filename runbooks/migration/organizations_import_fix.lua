-- Seed 003 (Organizations Import Fix - Monitoring & Rollback Plan): the fix for the importer's
-- PostgreSQL 42P10 ("no unique or exclusion constraint matching the ON CONFLICT
-- specification"). Baselines first ("Database Health Baselines", and "Application Performance
-- Baselines": the plan's query timed several times), the pre-flight the indexes need (no active
-- organizations that share a name and type, exactly or case-insensitively; the plan's
-- connection and lock monitoring: no transaction a CONCURRENTLY build would wait behind), then
-- the two unique indexes built CONCURRENTLY (outside any transaction, so imports keep running),
-- the plan's constraint health checks, an import with ON CONFLICT that must now succeed, the
-- performance compared with the baseline ("No performance degradation >10%": a slower query is
-- a finding, audited and sent as a warning -- the plan rolls back for performance only after 30
-- minutes, in its decision tree), the success message of its communication templates, and then
-- the plan's rollback decision tree as a watch over the live metrics (24 hours), with the
-- connections in use beside the lock metrics, and at the end the plan's success validation
-- checklist.
--
-- The rollback path is the plan's: phase 1 blocks imports with the maintenance flag in
-- system_settings, phase 2 drops the indexes and checks they are gone, phase 3 re-enables
-- imports and sends the rollback notification. A failing step, a watch trigger, Ctrl-C and
-- `runbook rollback RUN` all take it.
--
-- It expects a config (runbook.lua, or --config) with the escalation policy `import_fix`, the
-- plan's escalation chain; runbooks/migration/organizations_import_fix.config is one to start
-- from:
--   escalation = { import_fix = { levels = {
--     { after = "0m",  notify = { "team" } },               -- 1: development team lead, at once
--     { after = "5m",  notify = { "dba" } },                -- 2: database administrator, 5 minutes
--     { after = "15m", notify = { "dba", "director" } },    -- 3: CTO / technical director, 15 minutes
--   } } },
--   default_channels = { "team" },    -- where the communication templates go
-- Try it: runbook run migration.organizations_import_fix --sandbox --yes
--           --config runbooks/migration/organizations_import_fix.config
--           --param watch_for=1m --param watch_every=5s
local template = require "template"
local health = require "health"
local guards = require "guards"

local NAME = "Organizations Import Fix"
local EXACT = "organizations_exact_name_type_active"
local CASELESS = "unique_organization_name_type_ci"

-- Sends a communication template's text on the config's default channels. One that cannot
-- be sent (the config has no channels) is logged instead, saying why; it fails nothing.
local function announce(ctx, severity, text)
  local ok, err = pcall(alert.send, { severity = severity, summary = text })
  if not ok then ctx.log(text .. "\n(not sent: " .. tostring(err) .. ")") end
end

-- A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind: drop it, then fail.
local function create_index_concurrently(ctx, name, ddl)
  local ok, err = pcall(ctx.db.exec, ctx.db, ddl)
  if not ok then
    ctx.db:exec("DROP INDEX CONCURRENTLY IF EXISTS " .. name)  -- our names, not input
    error(err, 0)
  end
end

-- The plan's performance baseline query, run `runs` times ("run several times"): the median
-- execution time, and every run's.
local function query_ms(ctx, runs)
  local times = {}
  for i = 1, runs do
    local plan = ctx.db:scalar([[EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT count(*) FROM organizations
                                 WHERE name ILIKE 'test%' AND type = 'customer' AND deleted_at IS NULL]])
    times[i] = plan[1]["Execution Time"]
  end
  local sorted = { unpack(times) }
  table.sort(sorted)
  return sorted[math.floor((runs + 1) / 2)], times
end

-- What the baseline step measured, for the comparison after the migration (in this process).
local measured = {}

local function baseline(ctx)
  local row = ctx.db:query([[SELECT count(*) AS total_records,
                                    count(*) FILTER (WHERE deleted_at IS NULL) AS active_records,
                                    pg_total_relation_size('organizations')::float8 AS table_bytes
                             FROM organizations]])[1]
  row.query_ms, row.query_runs_ms = query_ms(ctx, ctx.params.perf_runs)
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
  escalation = "import_fix",   -- the plan's escalation chain: see the top of this file
  params = {
    watch_for = { type = "duration", default = "24h", doc = "how long the decision tree watches the metrics after the migration" },
    watch_every = { type = "duration", default = "30s", doc = "how often it samples them" },
    perf_runs = { type = "integer", default = 5, doc = "how many times the baseline query is timed (the median counts)" },
    perf_tolerance = { type = "number", default = 0.10, doc = "the largest slowdown of the baseline query that is no finding (0.10: 10%)" },
    perf_noise_ms = { type = "number", default = 0.5,
                      doc = "a slowdown smaller than this many milliseconds is timing noise, whatever its share" },
    max_transaction_age = { type = "duration", default = "5m",
                            doc = "the oldest open transaction the index builds may wait behind" },
  },

  phase "baseline" {
    step "capture baselines" {
      run = function(ctx)
        check(health.table_exists(ctx.db, "organizations"), "table organizations not found")
        check(health.column_exists(ctx.db, "organizations", "deleted_at"), "organizations has no deleted_at column")
        local b = baseline(ctx)
        audit.note("organizations baseline", b)
        measured.before = b
        return b
      end,
    },
    step "no duplicate organizations" {
      -- Both unique indexes would fail on duplicates (and leave an INVALID index behind): the
      -- exact (name, type) index and the case-insensitive lower(trim(name)), type one -- the
      -- plan's data_integrity check. Exact duplicates are case-insensitive ones too.
      run = function(ctx)
        local groups = ctx.db:query([[
          SELECT lower(trim(name)) AS name, type, count(*) AS active, count(DISTINCT name) AS spellings,
                 string_agg(id::text || ' ' || quote_literal(name), ', ' ORDER BY id) AS organizations,
                 count(*) OVER () AS total_groups
          FROM organizations WHERE deleted_at IS NULL
          GROUP BY lower(trim(name)), type HAVING count(*) > 1
          ORDER BY count(*) DESC, 1, 2 LIMIT 100]])  -- the note names the first 100
        if #groups > 0 then
          local total = groups[1].total_groups
          audit.note("duplicate organizations", { groups = total, duplicates = groups })
          local named = {}
          for i = 1, math.min(#groups, 5) do
            local g = groups[i]
            named[i] = string.format("%s '%s' (%s%s)", g.type, g.name, g.organizations,
                                     g.spellings == 1 and ", exact" or ", differing in case or spaces")
          end
          check(false, "%d groups of active organizations share a name and type, which the unique indexes "
                .. "forbid: %s%s. Merge or soft-delete them first (runbook run troubleshoot.duplicates)",
                total, table.concat(named, "; "), total > 5 and "; ..." or "")
        end
        return { groups = 0 }
      end,
    },
    step "no transaction the index builds would wait for" {
      -- The plan's connection monitoring: who is on organizations (or building an index) now.
      -- CREATE INDEX CONCURRENTLY waits for every transaction older than itself; one that stays
      -- open stalls it (until the step's lock_timeout). Read-only: nothing is terminated.
      run = function(ctx)
        local sessions = ctx.db:query([[
          SELECT pid, usename, application_name, state, query_start::text AS query_start,
                 extract(epoch FROM now() - query_start)::float8 AS seconds,
                 extract(epoch FROM now() - xact_start)::float8 AS transaction_seconds,
                 wait_event_type, wait_event
          FROM pg_stat_activity
          WHERE pid <> pg_backend_pid() AND datname = current_database()
            AND (query LIKE '%organizations%' OR query LIKE '%CREATE INDEX%')
          ORDER BY query_start]])
        audit.note("sessions on organizations", { count = #sessions, sessions = sessions })
        local ok, why = guards.no_long_transactions(string.format("%d seconds", ctx.params.max_transaction_age))(ctx)
        check(ok, "%s: the CONCURRENTLY index builds would wait for them; let them finish or end them "
              .. "(runbook run troubleshoot.connections)", why)
        return { sessions = #sessions }
      end,
    },
    step "imports enabled" {
      -- The maintenance flag the rollback plan flips. Its rollback is the plan's phase 3, the
      -- last handler of the rollback path: imports back on, and the rollback notification.
      run = function(ctx)
        local flag = ctx.db:query([[SELECT import_enabled, maintenance_message FROM system_settings
                                    WHERE setting_key = 'import_config']])[1]
        check(flag, "system_settings has no 'import_config' row: the rollback plan could not block imports")
        check(flag.import_enabled, "imports are disabled (%s): this run would turn them back on if it rolls back; "
              .. "enable them first", tostring(flag.maintenance_message))
        return flag
      end,
      rollback = function(ctx)
        check(ctx.db:exec([[UPDATE system_settings SET import_enabled = true, maintenance_message = NULL
                            WHERE setting_key = 'import_config']]) == 1, "no 'import_config' row to re-enable imports")
        local issue = ctx.failure and ctx.failure.error or ("rollback asked for; see `runbook log " .. ctx.run .. "`")
        announce(ctx, "critical", template.render(template.rollback_notification, { name = NAME, issue = issue }, ctx))
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
      rollback = function(ctx)  -- the plan's phase 2, and its check that the rollback took
        ctx.db:exec("DROP INDEX CONCURRENTLY IF EXISTS " .. EXACT)
        check(not health.index_exists(ctx.db, EXACT), "Rollback FAILED: %s still exists", EXACT)
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
      -- 42P10; now the conflicts are absorbed and nothing changes. The rows keep their ids, so
      -- the test draws nothing from organizations_id_seq (a DEFAULT would, even for skipped
      -- rows) and a rehearsal's rollback leaves the database exactly as it was.
      run = function(ctx)
        local ok, inserted = pcall(ctx.db.exec, ctx.db, [[
          INSERT INTO organizations (id, name, type)
          SELECT id, name, type FROM organizations WHERE deleted_at IS NULL ORDER BY id LIMIT 100
          ON CONFLICT (name, type) WHERE deleted_at IS NULL DO NOTHING]])
        if not ok then
          check(inserted.sqlstate ~= "42P10", "imports still fail with 42P10: %s", tostring(inserted))
          error(inserted, 0)
        end
        check(inserted == 0, "the re-import inserted %d rows that already existed", inserted)
      end,
    },
  },

  phase "rollback plan" {
    step "imports can be blocked" {
      -- Its rollback is the plan's phase 1, the first handler of the rollback path: no new
      -- imports while the indexes are dropped.
      run = function(ctx)
        check(ctx.db:scalar("SELECT has_table_privilege('system_settings', 'UPDATE')"),
              "this role cannot update system_settings: the rollback could not block imports")
      end,
      rollback = function(ctx)
        check(ctx.db:exec([[UPDATE system_settings
                            SET import_enabled = false, maintenance_message = 'Import system temporarily unavailable'
                            WHERE setting_key = 'import_config']]) == 1, "no 'import_config' row to block imports")
      end,
    },
  },

  phase "report" {
    step "performance compared with the baseline" {
      -- The plan's post-migration performance queries, and its criterion "No performance
      -- degradation >10%". A slower query is a finding (audited, and a warning on the team's
      -- channel); the plan's decision tree, not this step, decides on a rollback for performance.
      run = function(ctx)
        local after = baseline(ctx)
        after.post_migration_performance = ctx.db:query([[
          SELECT (SELECT count(*) FROM organizations WHERE name ILIKE 'test%') AS test_count, now()::text AS check_time]])[1]
        after.index_usage = ctx.db:query([[
          SELECT indexrelname AS index, idx_scan, idx_tup_read, idx_tup_fetch FROM pg_stat_user_indexes
          WHERE relname = 'organizations' ORDER BY idx_scan DESC, 1]])
        audit.note("organizations after migration", after)
        local before = measured.before
        if not before then  -- a resumed run: the baseline was measured by the process that died
          audit.note("performance not compared", { reason = "no baseline measured in this process (resumed run)" })
          return { compared = false }
        end
        local change = before.query_ms > 0 and (after.query_ms - before.query_ms) / before.query_ms or 0
        local degraded = change > ctx.params.perf_tolerance and after.query_ms - before.query_ms >= ctx.params.perf_noise_ms
        local result = { before_ms = before.query_ms, after_ms = after.query_ms, change = change, degraded = degraded,
                         tolerance = ctx.params.perf_tolerance }
        audit.note(degraded and "performance degraded" or "performance within the baseline", result)
        measured.compared = result
        if degraded then
          announce(ctx, "warning", template.render(template.critical_issue, {
            problem = string.format("%s: the plan's baseline query is %.0f%% slower after the migration (%.3f ms, was %.3f ms)",
                                    NAME, change * 100, after.query_ms, before.query_ms),
            impact = "imports and organization searches may be slower",
            action = "compare the query plans (runbook run troubleshoot.slow_queries); the decision tree watches the imports",
            eta = "investigating",
            contact = "the development team lead",
          }))
        end
        return result
      end,
    },
    step "success message" {
      run = function(ctx)
        announce(ctx, "info", template.render(template.migration_success, {
          name = NAME,
          watch_hours = string.format(ctx.params.watch_for >= 3600 and "%g" or "%.2f", ctx.params.watch_for / 3600),
        }, ctx))
      end,
    },
  },

  watch "decision tree" {
    -- (A watch runs after the phases before it: the index builds themselves are guarded by the
    -- pre-flight's connection and lock checks and by their lock_timeout.)
    every = function(ctx) return ctx.params.watch_every end,
    lasting = function(ctx) return ctx.params.watch_for end,
    -- One snapshot a sample, on a connection of the watch's own. Rates are over the import
    -- batches of the last 15 minutes, and unknown (nil: no trigger fires on them) below 20
    -- records: a quiet importer is no evidence either way.
    metrics = {
      constraint_missing = [[SELECT count(*) < 2 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                             WHERE c.relname IN (']] .. EXACT .. "', '" .. CASELESS .. [[')
                               AND i.indisvalid AND i.indisunique]],
      success_rate = [[SELECT CASE WHEN sum(records_attempted) >= 20
                                   THEN sum(records_successful)::float8 / sum(records_attempted) END
                       FROM import_monitoring WHERE operation_start > localtimestamp - interval '15 minutes']],
      error_rate = [[SELECT CASE WHEN sum(records_attempted) >= 20
                                 THEN sum(records_failed)::float8 / sum(records_attempted) END
                     FROM import_monitoring WHERE operation_start > localtimestamp - interval '15 minutes']],
      -- the importer's own timing of its batches: the database's response time as it sees it
      response_ms = [[SELECT avg(performance_ms)::float8 FROM import_monitoring
                      WHERE operation_start > localtimestamp - interval '15 minutes']],
      -- the plan's critical errors: 42P10 should be gone, 23505 and 42P01 are new breakage
      critical_errors = [[SELECT count(*) FROM import_monitoring
                          WHERE operation_start > localtimestamp - interval '15 minutes'
                            AND error_code IN ('42P10', '23505', '42P01')]],
      -- failed batches whose error is none of the plan's known warnings
      unknown_errors = [[SELECT count(*) FROM import_monitoring
                         WHERE operation_start > localtimestamp - interval '15 minutes' AND records_failed > 0
                           AND coalesce(error_message, '') !~* '^(Import timeout|Connection pool exhausted|Validation failed)']],
      -- sessions of this database waiting for a lock
      blocked = [[SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                  WHERE NOT l.granted AND d.datname = current_database()]],
      -- the plan's connection monitoring: the server's connections in use, as a share of max_connections
      connections_used = [[SELECT count(*)::float8 / current_setting('max_connections')::float8 FROM pg_stat_activity
                           WHERE backend_type = 'client backend']],
    },

    -- Immediate (0-5 minutes): roll back at once; the rollback blocks imports first. (A
    -- migration that fails while it runs never gets here: its failing step rolls back.)
    trigger "critical constraint missing" { before = "5m", when = "constraint_missing", action = "rollback" },
    trigger "critical import errors" { before = "5m", when = "critical_errors > 0", action = "rollback" },

    -- Conditional (5-30 minutes).
    trigger "success rate under 50%" { after = "5m", before = "30m", when = "success_rate < 0.5",
      -- investigate for 10 minutes; no quick fix (the rate back at the plan's 90%): roll back
      action = investigate { window = "10m", unless = "success_rate >= 0.9", action = "rollback" } },
    trigger "slow with lock contention" { after = "5m", before = "30m", when = "response_ms > 500 and blocked > 0",
      -- roll back if the locks persist 15 minutes
      action = investigate { window = "15m", unless = "blocked == 0", action = "rollback" } },
    trigger "error rate over 25%, unknown errors" { after = "5m", before = "30m",
      when = "error_rate > 0.25 and unknown_errors > 0", action = "rollback" },
    trigger "error rate over 25%, known errors" { after = "5m", before = "30m", when = "error_rate > 0.25",
      clear_when = "error_rate <= 0.25",
      action = alert { severity = "warning", summary = template.render(template.critical_issue, {
        problem = NAME .. ": more than 25% of imported records fail, with the plan's known warnings",
        impact = "imports partly fail for users",
        action = "check the importer's timeouts, connection pool and validation errors",
        eta = "investigating",
        contact = "the development team lead",
      }) } },
    trigger "slow imports" { after = "5m", before = "30m", when = "response_ms > 500",
      clear_when = "response_ms <= 500",
      action = alert { severity = "warning", summary = template.render(template.critical_issue, {
        problem = NAME .. ": import batches take over 500 ms, without lock contention",
        impact = "slow imports",
        action = "look at the import queries' plans (runbook run troubleshoot.slow_queries)",
        eta = "investigating",
        contact = "the development team lead",
      }) } },

    -- Performance (30 minutes on): a sustained drop is a decision for people, not a rollback
    -- now. The DBA (level 2) is asked to schedule a maintenance-window rollback.
    trigger "success rate under 90% for 30 minutes" { after = "30m", when = "success_rate < 0.9", sustained = "30m",
      clear_when = "success_rate >= 0.95",
      action = escalate { level = 2, severity = "error", cause = "import success rate",
        summary = template.render(template.critical_issue, {
          problem = NAME .. ": import success rate under 90% for 30 minutes",
          impact = "a tenth or more of imported records fail",
          action = "schedule a maintenance-window rollback (runbook rollback RUN, RUN in this incident)",
          eta = "the next maintenance window",
          contact = "the database administrator",
        }) } },

    -- Any time: "Connection pool exhausted" is one of the plan's warnings (investigate, no rollback).
    trigger "connections near the limit" { when = "connections_used > 0.9", clear_when = "connections_used <= 0.8",
      action = alert { severity = "warning", summary = template.render(template.critical_issue, {
        problem = NAME .. ": more than 90% of the server's connections are in use",
        impact = "imports may fail with 'Connection pool exhausted'",
        action = "look at the sessions (runbook run troubleshoot.connections)",
        eta = "investigating",
        contact = "the database administrator",
      }) } },
  },

  -- The plan's "Success Validation Checklist", once the 24 hours are over: what the database can
  -- answer is checked, the rest is asked of people (on a terminal; "unconfirmed" otherwise). A
  -- failed item is a finding, not a reason to undo a migration that works: the run then ends
  -- succeeded_with_failures (exit 4), naming it.
  checklist "success validation" {
    on_error = "continue",
    -- Technical validation
    { "migration script executed without errors", check = function(ctx) return true, "every step succeeded" end },
    { "both unique constraints exist and are functional", check = function(ctx)
        local n = ctx.db:scalar([[SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                                  WHERE c.relname IN ($1, $2) AND i.indisvalid AND i.indisunique]], EXACT, CASELESS)
        return n == 2, n .. " of 2 valid unique indexes"
      end },
    { "import operations succeed with ON CONFLICT", check = function(ctx)
        local n = ctx.db:exec([[INSERT INTO organizations (id, name, type)
                                SELECT id, name, type FROM organizations WHERE deleted_at IS NULL ORDER BY id LIMIT 10
                                ON CONFLICT (name, type) WHERE deleted_at IS NULL DO NOTHING]])
        return n == 0, n .. " rows inserted by a re-import of existing organizations"
      end },
    { "no performance degradation over 10%", check = function(ctx)
        local c = measured.compared
        if not c then return false, "not compared: no baseline measured in this process (resumed run)" end
        return not c.degraded, string.format("%.3f ms, baseline %.3f ms (%+.0f%%)", c.after_ms, c.before_ms, c.change * 100)
      end },
    { "error logs show zero 42P10 errors", check = function(ctx)
        local n = ctx.db:scalar([[SELECT count(*) FROM import_monitoring WHERE error_code = '42P10'
                                  AND operation_start > localtimestamp - interval '15 minutes']])
        return n == 0, n .. " import batches failed with 42P10 in the last 15 minutes"
      end },
    { "rollback script tested and verified",
      manual = "Has `runbook rehearse migration.organizations_import_fix` passed against a copy of this database?" },
    -- Business validation
    { "import feature fully functional for end users", manual = "Can end users import organizations?" },
    { "data integrity maintained (no duplicates)", check = function(ctx)
        local n = ctx.db:scalar([[SELECT count(*) FROM (SELECT 1 FROM organizations WHERE deleted_at IS NULL
                                  GROUP BY lower(trim(name)), type HAVING count(*) > 1) d]])
        return n == 0, n .. " groups of active organizations share a name and type"
      end },
    { "performance meets the SLA (under 5 ms per imported record)", check = function(ctx)
        local ms = ctx.db:scalar([[SELECT sum(performance_ms)::float8 / nullif(sum(records_attempted), 0)
                                   FROM import_monitoring WHERE operation_start > localtimestamp - interval '15 minutes']])
        if ms == db.null then return true, "no imports in the last 15 minutes" end
        return ms < 5, string.format("%.2f ms per imported record", ms)
      end },
    { "user acceptance testing passed", manual = "Has user acceptance testing of the import passed?" },
    { "documentation updated", manual = "Is the documentation updated?" },
    -- Operational validation
    { "monitoring dashboards show green", manual = "Do the monitoring dashboards show green status?" },
    { "support team notified of the changes", manual = "Has the support team been told about the changes?" },
    { "runbook updated with the new procedures", manual = "Is the runbook updated with the new procedures?" },
    { "knowledge base articles created", manual = "Are the knowledge base articles written?" },
    { "next maintenance window scheduled for cleanup", manual = "Is the next maintenance window scheduled for the cleanup?" },
  },
}
