-- Seed 004 (Database Troubleshooting Guide), "Analytics & Reporting Problems - Missing
-- Analytics Data" and "Materialized View Issues - Missing View Data": zero counts in the
-- dashboards. Checks that the base tables have data, which analytics views are not populated
-- or empty while they do, and the guide's step-by-step view logic (participants with points or
-- submissions against the leaderboard's rows); then, confirmed, repopulates them with
-- refresh_all_analytics(). Views hold only what their base tables say, so there is no row to
-- back up: their row counts before and after are audited. Stale totals (populated, but wrong)
-- are troubleshoot.leaderboard's.
local function views(ctx)
  return ctx.db:query([[SELECT matviewname AS view, ispopulated AS populated FROM pg_matviews
                        WHERE schemaname = 'public' ORDER BY matviewname]])
end

-- Each view with its row count (nil when it cannot be read: not populated).
local function counted(ctx)
  local out = {}
  for _, v in ipairs(views(ctx)) do
    -- The name comes from pg_matviews, quoted by the server.
    v.rows = v.populated and ctx.db:scalar("SELECT count(*) FROM " .. ctx.db:scalar("SELECT quote_ident($1)", v.view)) or db.null
    out[#out + 1] = v
  end
  return out
end

local function missing(ctx)
  local out = {}
  for _, v in ipairs(counted(ctx)) do
    if not v.populated or v.rows == 0 then out[#out + 1] = v.view end
  end
  return out
end

runbook "troubleshoot.analytics" {
  title = "Analytics dashboards show no data",
  description = "Base data against analytics views not populated or empty; repopulates them with refresh_all_analytics().",
  tags = { "troubleshoot", "analytics", "seed-004" },
  fixture = "leaps.sql",

  phase "diagnose" {
    step "base tables" {
      run = function(ctx)
        local base = ctx.db:query([[SELECT (SELECT count(*) FROM users) AS users,
                                           (SELECT count(*) FROM users WHERE role = 'PARTICIPANT') AS participants,
                                           (SELECT count(*) FROM submissions) AS submissions,
                                           (SELECT count(*) FROM submissions WHERE status = 'APPROVED') AS approved,
                                           (SELECT count(*) FROM points_ledger) AS points_ledger]])[1]
        audit.note("base table counts", base)
        check(base.users > 0 and base.points_ledger > 0, "the base tables are empty: restore the data before the views")
        return base
      end,
    },
    step "views" {
      run = function(ctx)
        local all = counted(ctx)
        for _, v in ipairs(all) do
          ctx.log(string.format("%-24s %s", v.view, v.populated and (tostring(v.rows) .. " rows") or "NOT POPULATED"))
        end
        local empty = missing(ctx)
        audit.note("analytics views", { views = all, missing = #empty, missing_views = empty })
        return { missing = #empty }
      end,
    },
    step "view logic" {
      -- The guide's check: participants the leaderboard should list, computed from the base tables.
      run = function(ctx)
        local expected = ctx.db:scalar([[
          SELECT count(*) FROM (
            SELECT u.id FROM users u
            LEFT JOIN points_ledger pl ON u.id = pl.user_id LEFT JOIN submissions s ON u.id = s.user_id
            WHERE u.role = 'PARTICIPANT' GROUP BY u.id
            HAVING coalesce(sum(pl.delta_points), 0) <> 0 OR count(s.id) > 0) p]])
        local populated = ctx.db:scalar("SELECT ispopulated FROM pg_matviews WHERE matviewname = 'leaderboard_totals'")
        local listed = populated and ctx.db:scalar("SELECT count(*) FROM leaderboard_totals WHERE total_points <> 0") or db.null
        audit.note("leaderboard coverage", { participants_with_activity = expected, leaderboard_rows_with_points = listed })
        return { expected = expected }
      end,
    },
  },

  phase "repopulate" {
    step "refresh all analytics" {
      when = function(ctx) return #missing(ctx) > 0 or "every analytics view has data" end,
      confirm = { "Refreshes every analytics view (a view never populated is locked while it fills)", on_decline = "skip" },
      lock_timeout = "30s",
      retry = { attempts = 3, backoff = "exponential", initial = "5s", on = { "lock_not_available" } },
      run = function(ctx)
        local before = counted(ctx)
        ctx.db:exec("SELECT refresh_all_analytics()")
        local after = counted(ctx)
        audit.note("analytics refreshed", { before = before, after = after })
        return { refreshed = #after }
      end,
      verify = function(ctx)
        local left = missing(ctx)
        check(#left == 0, "still without data after the refresh: %s", table.concat(left, ", "))
      end,
    },
  },
}
