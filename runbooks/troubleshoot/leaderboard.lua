-- Seed 004 (Database Troubleshooting Guide), "Analytics & Reporting Problems - Leaderboard
-- Inconsistencies": compare the leaderboard_totals materialized view with totals computed
-- live from the points ledger; when they differ, refresh the view (CONCURRENTLY: readers keep
-- the old totals until the new ones are ready) and compare again. A refresh has nothing to
-- undo, so there is no rollback.
local DIFFERENCES = [[
  WITH live_totals AS (
    SELECT u.id, u.handle, coalesce(sum(pl.delta_points), 0) AS live_points
    FROM users u LEFT JOIN points_ledger pl ON u.id = pl.user_id
    WHERE u.role = 'PARTICIPANT'
    GROUP BY u.id, u.handle)
  SELECT coalesce(lt.user_id, live.id) AS user_id, coalesce(lt.handle, live.handle) AS handle,
         lt.total_points AS mv_points, live.live_points,
         coalesce(live.live_points, 0) - coalesce(lt.total_points, 0) AS difference
  FROM leaderboard_totals lt
  FULL OUTER JOIN live_totals live ON lt.user_id = live.id
  WHERE coalesce(lt.total_points, 0) != coalesce(live.live_points, 0)
  ORDER BY 1]]

local function differences(ctx) return ctx.db:query(DIFFERENCES) end

runbook "troubleshoot.leaderboard" {
  title = "Leaderboard totals do not match the points",
  description = "Compares leaderboard_totals with live totals and refreshes it when they differ.",
  tags = { "troubleshoot", "analytics", "seed-004" },
  fixture = "leaps.sql",

  step "compare with live totals" {
    run = function(ctx)
      local diff = differences(ctx)
      for _, d in ipairs(diff) do
        ctx.log(string.format("%s (%s): leaderboard %s, ledger %s", d.user_id, tostring(d.handle),
                              tostring(d.mv_points), tostring(d.live_points)))
      end
      audit.note("leaderboard differences", { participants = #diff, details = diff })
      return { differences = #diff }
    end,
  },
  step "refresh leaderboard" {
    when = function(ctx) return #differences(ctx) > 0 or "the leaderboard matches the ledger" end,
    lock_timeout = "30s",
    retry = { attempts = 3, backoff = "exponential", initial = "5s", on = { "lock_not_available" } },
    run = function(ctx) ctx.db:exec("REFRESH MATERIALIZED VIEW CONCURRENTLY leaderboard_totals") end,
    verify = function(ctx)
      local left = #differences(ctx)
      check(left == 0, "%d participants still differ after the refresh: check the view's definition", left)
    end,
  },
}
