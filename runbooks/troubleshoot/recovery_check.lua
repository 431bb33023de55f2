-- Seed 004 (Database Troubleshooting Guide), "Emergency Recovery - Recovery Verification":
-- after a restore, record the headline counts and check referential integrity. Fails, naming
-- what is wrong, if any submission, point or attachment is orphaned (troubleshoot.orphans
-- cleans those up). Read-only. troubleshoot.restore_from_backup and point_in_time_recovery end
-- with the same checks (stdlib/recovery.lua).
local recovery = require "recovery"  -- the checks, shared with the other recovery runbooks

runbook "troubleshoot.recovery_check" {
  title = "Verify a recovered database",
  description = "Counts users, submissions and points, and fails on orphaned records.",
  tags = { "troubleshoot", "recovery", "seed-004" },
  fixture = "recovered.sql",

  step "data consistency" {
    run = function(ctx)
      local counts = recovery.counts(ctx.db)
      check(counts.users > 0, "no users: the restore is empty")
      audit.note("recovery counts", counts)
      return counts
    end,
  },
  step "referential integrity" {
    run = function(ctx)
      local orphaned = recovery.orphans(ctx.db)
      audit.note("orphaned records", orphaned)
      check(orphaned.submissions + orphaned.points + orphaned.attachments == 0,
            "orphaned submissions: %d, orphaned points: %d, orphaned attachments: %d (run troubleshoot.orphans)",
            orphaned.submissions, orphaned.points, orphaned.attachments)
      return orphaned
    end,
  },
}
