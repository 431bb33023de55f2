-- Seed 004 (Database Troubleshooting Guide), "Materialized View Issues - View Refresh Failures"
-- and "Analytics & Reporting Problems - Missing Analytics Data": refresh_all_analytics() fails,
-- dashboards show stale or no data. Diagnoses first (read-only): each view's state (pg_matviews,
-- a unique index for CONCURRENTLY, its last refresh in analytics_refresh_log when the
-- application keeps one), the base tables' rows, each view's rows against what its own query
-- returns now (missing and extra rows; a query that fails is a broken view), and the sessions
-- whose locks hold a refresh up (the guide's blocking-locks query). Then, each asked first and
-- skipped when declined: terminate those sessions (what they ran is audited first: a session
-- cannot be backed up), recreate a broken view (its definition and indexes saved to
-- matview_definition_backup first; rebuilt from views/NAME.sql, the migration's SQL, when there
-- is one, else from the saved definition) and refresh the stale ones, CONCURRENTLY when a unique
-- index allows it, each timed. A refresh replaces only rows derived from the base tables, which
-- it does not touch, so there is nothing to back up for it.
local health = require "health"

local VIEWS = { "leaderboard_totals", "activity_metrics", "cohort_metrics" }  -- refresh_all_analytics()'s

-- The runbook's views that exist, with what a refresh needs to know.
local function views(ctx)
  return ctx.db:query([[
    SELECT c.relname AS view, c.relispopulated AS populated,
           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid
                   AND i.indpred IS NULL AND i.indexprs IS NULL) AS unique_index
    FROM pg_class c WHERE c.relkind = 'm' AND c.relnamespace = 'public'::regnamespace AND c.relname = ANY($1::text[])
    ORDER BY array_position($1::text[], c.relname::text)]], db.array(VIEWS))
end

local function message(err) return type(err) == "table" and err.message or tostring(err) end

-- A view's rows against its own query (its definition from the catalog, for a view named in
-- VIEWS): { view, populated, query_rows, view_rows, missing, extra, stale, broken, error }.
local function examine(ctx, v)
  local def = (ctx.db:scalar("SELECT pg_get_viewdef($1::regclass)", v.view):gsub(";%s*$", ""))
  local r = { view = v.view, populated = v.populated, stale = false, broken = false }
  -- q::text needs every column: an unused one would not be computed, nor fail
  local ok, n = pcall(ctx.db.scalar, ctx.db, "SELECT count(*) FROM (" .. def .. ") q WHERE q::text IS NOT NULL")
  if not ok then
    r.broken, r.error = true, message(n)
    return r
  end
  r.query_rows = n
  if not v.populated then
    r.stale = true
    return r
  end
  r.view_rows = ctx.db:scalar("SELECT count(*) FROM " .. v.view)
  r.missing = ctx.db:scalar("SELECT count(*) FROM ((" .. def .. ") EXCEPT ALL SELECT * FROM " .. v.view .. ") d")
  r.extra = ctx.db:scalar("SELECT count(*) FROM (SELECT * FROM " .. v.view .. " EXCEPT ALL (" .. def .. ")) d")
  r.stale = r.missing + r.extra > 0
  return r
end

local function examine_all(ctx)
  local out = {}
  for _, v in ipairs(views(ctx)) do out[#out + 1] = examine(ctx, v) end
  return out
end

local function with(list, field)
  local out = {}
  for _, r in ipairs(list) do if r[field] then out[#out + 1] = r end end
  return out
end

-- Other sessions holding a lock on one of the views that its refresh must wait for: a plain
-- REFRESH takes ACCESS EXCLUSIVE (every lock is in its way), CONCURRENTLY takes EXCLUSIVE
-- (plain readers are not). Never runbook's own sessions.
local function blockers(ctx)
  local concurrent = {}
  for _, v in ipairs(views(ctx)) do concurrent[v.view] = v.populated and v.unique_index end
  local out = {}
  for _, l in ipairs(ctx.db:query([[
      SELECT l.pid, c.relname AS view, l.mode, a.usename, a.application_name, a.state,
             extract(epoch FROM now() - a.xact_start)::float8 AS transaction_seconds, left(a.query, 300) AS query
      FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
        AND c.relnamespace = 'public'::regnamespace AND c.relname = ANY($1::text[])
        AND coalesce(a.application_name, '') NOT LIKE 'runbook%'
      ORDER BY l.pid]], db.array(VIEWS))) do
    if not (concurrent[l.view] and l.mode == "AccessShareLock") then out[#out + 1] = l end
  end
  return out
end

runbook "troubleshoot.views" {
  title = "Analytics views fail to refresh or miss data",
  description = "Materialized views' state, data against their queries, blocking locks; terminates blockers, "
             .. "recreates broken views, refreshes stale ones.",
  tags = { "troubleshoot", "analytics", "seed-004" },
  fixture = "views.sql",
  lock = true,

  phase "diagnose" {
    step "view status" {
      run = function(ctx)
        local status = ctx.db:query([[
          SELECT m.schemaname, m.matviewname, m.hasindexes, m.ispopulated,
                 pg_total_relation_size(format('%I.%I', m.schemaname, m.matviewname)::regclass)::float8 AS bytes
          FROM pg_matviews m WHERE m.schemaname = 'public' ORDER BY m.matviewname]])
        local last = {}
        if ctx.db:scalar("SELECT to_regclass('analytics_refresh_log') IS NOT NULL") then
          for _, r in ipairs(ctx.db:query([[SELECT view_name, max(refreshed_at)::text AS refreshed_at,
                                                   extract(epoch FROM now() - max(refreshed_at))::float8 AS seconds_ago
                                            FROM analytics_refresh_log GROUP BY view_name]])) do
            last[r.view_name] = r
          end
        end
        for _, v in ipairs(status) do
          v.last_refresh = last[v.matviewname] and last[v.matviewname].refreshed_at or "not recorded"
          ctx.log(string.format("%-20s populated=%s indexes=%s last refresh %s", v.matviewname, tostring(v.ispopulated),
                                tostring(v.hasindexes), v.last_refresh))
        end
        local unpopulated = {}
        for _, v in ipairs(status) do if not v.ispopulated then unpopulated[#unpopulated + 1] = v.matviewname end end
        audit.note("materialized views", { views = status, unpopulated = unpopulated })
        return { views = #status, unpopulated = #unpopulated }
      end,
    },
    step "base tables" {
      -- The guide's "check data exists in base tables".
      run = function(ctx)
        local counts = ctx.db:query([[SELECT 'users' AS table_name, count(*) AS count FROM users
                                      UNION ALL SELECT 'submissions', count(*) FROM submissions
                                      UNION ALL SELECT 'points_ledger', count(*) FROM points_ledger]])
        local empty = {}
        for _, c in ipairs(counts) do if c.count == 0 then empty[#empty + 1] = c.table_name end end
        audit.note("base tables", { counts = counts, empty = empty })
        return { empty = #empty }
      end,
    },
    step "view data against its query" {
      run = function(ctx)
        local report = examine_all(ctx)
        for _, r in ipairs(report) do
          if r.broken then
            ctx.log(r.view .. ": BROKEN, its query fails: " .. r.error)
          elseif not r.populated then
            ctx.log(string.format("%s: never populated; its query returns %d rows", r.view, r.query_rows))
          else
            ctx.log(string.format("%s: %d rows, its query %d: %d missing, %d extra", r.view, r.view_rows, r.query_rows,
                                  r.missing, r.extra))
          end
        end
        local stale, broken = with(report, "stale"), with(report, "broken")
        audit.note("view data", { views = report, stale = #stale, broken = #broken })
        return { stale = #stale, broken = #broken }
      end,
    },
    step "locks holding up a refresh" {
      run = function(ctx)
        local held = blockers(ctx)
        for _, b in ipairs(held) do
          ctx.log(string.format("pid %d (%s, %s) holds %s on %s for %.0fs: %s", b.pid, tostring(b.usename), b.state, b.mode,
                                b.view, b.transaction_seconds or 0, b.query))
        end
        local waiting = health.blocking_locks(ctx.db)  -- the guide's query: who waits for whom
        audit.note("sessions blocking a refresh", { count = #held, sessions = held, waiting = waiting })
        return { blocking = #held }
      end,
    },
  },

  phase "fix" {
    -- No transaction: REFRESH ... CONCURRENTLY cannot run inside one.
    step "terminate sessions blocking the refresh" {
      when = function(ctx) return #blockers(ctx) > 0 or "no session holds a refresh up" end,
      confirm = { "Terminates the sessions whose locks hold up a view refresh (their transactions are rolled back)",
                  on_decline = "skip" },
      run = function(ctx)
        local held = blockers(ctx)
        audit.note("terminating sessions", { sessions = held })  -- what they were doing, before they are gone
        local done = {}
        for _, b in ipairs(held) do
          -- pg_terminate_backend waits (up to 5 s) until the session is gone
          done[#done + 1] = { pid = b.pid, terminated = ctx.db:scalar("SELECT pg_terminate_backend($1, 5000)", b.pid) }
        end
        return { terminated = #done, sessions = done }
      end,
      verify = function(ctx)
        local left = blockers(ctx)
        check(#left == 0, "%d sessions still hold a refresh up (pid %s)", #left, left[1] and left[1].pid)
      end,
    },
    step "recreate broken views" {
      when = function(ctx) return #with(examine_all(ctx), "broken") > 0 or "no view is broken" end,
      confirm = { "Drops and recreates every materialized view whose query fails (definition saved first)",
                  on_decline = "skip" },
      run = function(ctx)
        ctx.db:exec([[CREATE TABLE IF NOT EXISTS matview_definition_backup (
                        id BIGSERIAL PRIMARY KEY, view_name TEXT NOT NULL, definition TEXT NOT NULL, indexes TEXT[] NOT NULL,
                        populated BOOLEAN NOT NULL, run TEXT NOT NULL, backed_up_at TIMESTAMPTZ NOT NULL DEFAULT now())]])
        local rebuilt = {}
        for _, r in ipairs(with(examine_all(ctx), "broken")) do
          ctx.db:exec([[INSERT INTO matview_definition_backup (view_name, definition, indexes, populated, run)
                        SELECT c.relname, pg_get_viewdef(c.oid),
                               coalesce((SELECT array_agg(pg_get_indexdef(i.indexrelid) ORDER BY i.indexrelid)
                                         FROM pg_index i WHERE i.indrelid = c.oid), '{}'), c.relispopulated, $2
                        FROM pg_class c WHERE c.oid = $1::regclass]], r.view, ctx.run)
          local from
          ctx.db:transaction(function()
            local saved = ctx.db:query([[SELECT definition, indexes FROM matview_definition_backup
                                         WHERE view_name = $1 AND run = $2 ORDER BY id DESC LIMIT 1]], r.view, ctx.run)[1]
            ctx.db:exec("DROP MATERIALIZED VIEW " .. r.view)
            local ok, err = pcall(ctx.db.script, ctx.db, "views/" .. r.view .. ".sql")
            if ok then
              from = "views/" .. r.view .. ".sql"
            elseif type(err) == "table" and err.kind == "io" then
              from = "its saved definition"
              ctx.db:exec("CREATE MATERIALIZED VIEW " .. r.view .. " AS " .. (saved.definition:gsub(";%s*$", "")))
              for _, ix in ipairs(saved.indexes) do ctx.db:exec(ix) end
            else
              error(err, 0)
            end
          end)
          ctx.log(r.view .. ": recreated from " .. from)
          rebuilt[#rebuilt + 1] = { view = r.view, from = from, error_before = r.error }
        end
        audit.note("views recreated", { views = rebuilt, backup = "matview_definition_backup" })
        return { recreated = #rebuilt }
      end,
      verify = function(ctx)
        local still = with(examine_all(ctx), "broken")
        check(#still == 0, "view %s is still broken after it was recreated: %s", still[1] and still[1].view,
              still[1] and still[1].error)
      end,
      rollback = function(ctx)  -- the views as they were, from their saved definitions
        for _, b in ipairs(ctx.db:query([[SELECT DISTINCT ON (view_name) view_name, definition, indexes
                                          FROM matview_definition_backup WHERE run = $1 ORDER BY view_name, id DESC]], ctx.run)) do
          ctx.db:transaction(function()
            ctx.db:exec("DROP MATERIALIZED VIEW IF EXISTS " .. b.view_name)
            ctx.db:exec("CREATE MATERIALIZED VIEW " .. b.view_name .. " AS " .. b.definition:gsub(";%s*$", "") .. " WITH NO DATA")
            for _, ix in ipairs(b.indexes) do ctx.db:exec(ix) end
          end)
        end
      end,
    },
    step "refresh stale views" {
      when = function(ctx) return #with(examine_all(ctx), "stale") > 0 or "every view matches its query" end,
      confirm = { "Refreshes the stale materialized views (a view without a unique index is locked for reads meanwhile)",
                  on_decline = "skip" },
      lock_timeout = "30s",
      timeout = "1h",
      run = function(ctx)
        local log = ctx.db:scalar("SELECT to_regclass('analytics_refresh_log') IS NOT NULL")
        local refreshed = {}
        for _, v in ipairs(views(ctx)) do
          if examine(ctx, v).stale then
            local concurrently = v.populated and v.unique_index
            local started = ctx.db:scalar("SELECT extract(epoch FROM clock_timestamp())::float8")
            ctx.db:exec("REFRESH MATERIALIZED VIEW " .. (concurrently and "CONCURRENTLY " or "") .. v.view)
            local seconds = ctx.db:scalar("SELECT extract(epoch FROM clock_timestamp())::float8") - started
            if log then
              ctx.db:exec("INSERT INTO analytics_refresh_log (view_name, seconds) VALUES ($1, $2)", v.view, seconds)
            end
            ctx.log(string.format("%s refreshed%s in %.3fs", v.view, concurrently and " concurrently" or "", seconds))
            refreshed[#refreshed + 1] = { view = v.view, concurrently = concurrently, seconds = seconds }
          end
        end
        audit.note("views refreshed", { views = refreshed })
        return { refreshed = #refreshed }
      end,
      verify = function(ctx)
        for _, r in ipairs(examine_all(ctx)) do
          check(not r.stale and not r.broken, "view %s still differs from its query after the refresh", r.view)
        end
      end,
    },
  },

  phase "report" {
    step "views now" {
      run = function(ctx)
        local report = examine_all(ctx)
        local stale, broken = with(report, "stale"), with(report, "broken")
        audit.note("views now", { views = report, stale = #stale, broken = #broken, blocking = #blockers(ctx) })
        return { stale = #stale, broken = #broken }
      end,
    },
  },
}
