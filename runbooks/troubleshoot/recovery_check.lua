-- Seed 004 (Database Troubleshooting Guide), "Emergency Recovery - Recovery Verification":
-- after a restore, record the headline counts and check referential integrity. Fails, naming
-- what is wrong, if any submission, point or attachment is orphaned (troubleshoot.orphans
-- cleans those up). Read-only.
local health = require "health"

runbook "troubleshoot.recovery_check" {
  title = "Verify a recovered database",
  description = "Counts users, submissions and points, and fails on orphaned records.",
  tags = { "troubleshoot", "recovery", "seed-004" },
  fixture = "recovered.sql",

  step "data consistency" {
    run = function(ctx)
      local counts = ctx.db:query([[
        SELECT (SELECT count(*) FROM users) AS users,
               (SELECT count(*) FROM submissions) AS submissions,
               (SELECT count(*) FROM points_ledger) AS points_entries,
               (SELECT count(*) FROM submissions WHERE status = 'APPROVED') AS approved_submissions,
               (SELECT max(total_points) FROM leaderboard_totals) AS top_user_points]])[1]
      check(counts.users > 0, "no users: the restore is empty")
      audit.note("recovery counts", counts)
      return counts
    end,
  },
  step "referential integrity" {
    run = function(ctx)
      local orphaned = {
        submissions = health.orphans(ctx.db, "submissions", "user_id", "users"),
        points = health.orphans(ctx.db, "points_ledger", "user_id", "users"),
        attachments = health.orphans(ctx.db, "submission_attachments", "submission_id", "submissions"),
      }
      audit.note("orphaned records", orphaned)
      check(orphaned.submissions + orphaned.points + orphaned.attachments == 0,
            "orphaned submissions: %d, orphaned points: %d, orphaned attachments: %d (run troubleshoot.orphans)",
            orphaned.submissions, orphaned.points, orphaned.attachments)
      return orphaned
    end,
  },
}
