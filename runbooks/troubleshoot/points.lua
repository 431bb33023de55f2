-- Seed 004 (Database Troubleshooting Guide), "Data Integrity Problems - Point Calculation
-- Errors" and "Point Reconciliation": compare the points each participant should have from
-- approved submissions with the points ledger, per activity; list negative totals; then,
-- confirmed, credit what is missing with one RECONCILIATION row per participant and activity.
-- Unlike the guide's query (which re-credits every approved submission without a FORM row, so
-- twice for LEARN, credited by the Kajabi webhook), it credits only the shortfall, counts one
-- LEARN per participant (the business rule), and skips users that no longer exist. Points
-- credited in excess are reported, not removed: they are troubleshoot.duplicates' and
-- troubleshoot.orphans' to fix. The rows it inserts are recorded in troubleshoot_backup; its
-- rollback deletes them. Run troubleshoot.leaderboard afterwards.
local rowbackup = require "rowbackup"

-- Per participant and activity: the points approved submissions earn, and the ledger's.
local COMPARISON = [[
  WITH submission_points AS (
    SELECT s.user_id, s.activity_code, a.default_points,
           count(*) FILTER (WHERE s.status = 'APPROVED') AS approved_count,
           CASE WHEN s.activity_code = 'LEARN' THEN least(count(*) FILTER (WHERE s.status = 'APPROVED'), 1)
                ELSE count(*) FILTER (WHERE s.status = 'APPROVED') END * a.default_points AS expected_points
    FROM submissions s JOIN activities a ON s.activity_code = a.code
    WHERE a.default_points > 0
    GROUP BY s.user_id, s.activity_code, a.default_points),
  ledger_points AS (
    SELECT user_id, activity_code, sum(delta_points) AS actual_points
    FROM points_ledger GROUP BY user_id, activity_code)
  SELECT sp.user_id, sp.activity_code, sp.expected_points::int AS expected_points,
         coalesce(lp.actual_points, 0)::int AS actual_points,
         (sp.expected_points - coalesce(lp.actual_points, 0))::int AS difference,
         EXISTS (SELECT 1 FROM users u WHERE u.id = sp.user_id) AS user_exists
  FROM submission_points sp
  LEFT JOIN ledger_points lp ON sp.user_id = lp.user_id AND sp.activity_code = lp.activity_code
  WHERE sp.expected_points <> coalesce(lp.actual_points, 0)]]
local SHORTFALLS = "SELECT * FROM (" .. COMPARISON .. ") c WHERE difference > 0 AND user_exists"

local function shortfalls(ctx) return ctx.db:scalar("SELECT count(*) FROM (" .. SHORTFALLS .. ") s") end

runbook "troubleshoot.points" {
  title = "Points do not match approved submissions",
  description = "Compares expected and credited points per participant and activity; credits what is missing.",
  tags = { "troubleshoot", "data-integrity", "seed-004" },
  fixture = "leaps.sql",
  lock = true,

  phase "diagnose" {
    step "expected against credited points" {
      run = function(ctx)
        local rows = ctx.db:query(COMPARISON .. " ORDER BY 1, 2")
        local missing, excess, points_missing = 0, 0, 0
        for _, r in ipairs(rows) do
          ctx.log(string.format("%s %s: expected %d, credited %d%s", r.user_id, r.activity_code, r.expected_points,
                                r.actual_points, r.user_exists and "" or " (user does not exist)"))
          if r.difference > 0 and r.user_exists then missing, points_missing = missing + 1, points_missing + r.difference
          elseif r.difference < 0 then excess = excess + 1 end
        end
        audit.note("point differences", { differences = #rows, missing = missing, points_missing = points_missing,
                                           excess = excess, details = rows })
        if excess > 0 then ctx.log("excess points: see troubleshoot.duplicates and troubleshoot.orphans") end
        return { missing = missing, excess = excess }
      end,
    },
    step "negative totals" {
      run = function(ctx)
        local negative = ctx.db:query([[SELECT user_id, sum(delta_points)::int AS total FROM points_ledger
                                        GROUP BY user_id HAVING sum(delta_points) < 0 ORDER BY 1]])
        for _, n in ipairs(negative) do ctx.log(string.format("%s has a negative total: %d", n.user_id, n.total)) end
        audit.note("negative point totals", { users = #negative, details = negative })
        return { negative = #negative }
      end,
    },
  },

  phase "reconcile" {
    transaction = true,
    step "credit missing points" {
      when = function(ctx) return shortfalls(ctx) > 0 or "no participant is missing points" end,
      confirm = { "Credits the missing points as RECONCILIATION rows in points_ledger", on_decline = "skip" },
      run = function(ctx)
        rowbackup.create(ctx, "troubleshoot_backup")
        local ids = {}
        for _, r in ipairs(ctx.db:query([[INSERT INTO points_ledger (user_id, activity_code, source, delta_points)
                                          SELECT user_id, activity_code, 'RECONCILIATION', difference
                                          FROM (]] .. SHORTFALLS .. ") s RETURNING id")) do ids[#ids + 1] = r.id end
        local n = #ids
        local recorded = rowbackup.inserted(ctx, "troubleshoot_backup", "points_ledger", "id = ANY($1::text[])", db.array(ids))
        check(recorded == n, "credited %d rows but recorded %d", n, recorded)
        audit.note("points credited", { rows = n, run = ctx.run })
        return { credited = n }
      end,
      verify = function(ctx) check(shortfalls(ctx) == 0, "%d participants still miss points", shortfalls(ctx)) end,
      rollback = function(ctx) rowbackup.restore(ctx, "troubleshoot_backup", "points_ledger") end,
    },
  },
}
