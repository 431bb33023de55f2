-- Seed 004 (Database Troubleshooting Guide), "Data Integrity Problems - Orphaned Records": find
-- submissions and points whose user or activity is gone and attachments whose submission is
-- gone; then, confirmed, move them to orphaned_data_backup ("Backup before cleanup": one row
-- per orphan, its table and the row as JSON) and delete them; finally verify none is left.
-- Submissions go first, so the attachments they leave orphaned are cleaned up too.
local health = require "health"

local ORPHANED = {
  submissions = "NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id) "
             .. "OR NOT EXISTS (SELECT 1 FROM activities a WHERE a.code = t.activity_code)",
  points_ledger = "NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id) "
               .. "OR NOT EXISTS (SELECT 1 FROM activities a WHERE a.code = t.activity_code)",
  submission_attachments = "NOT EXISTS (SELECT 1 FROM submissions s WHERE s.id = t.submission_id)",
}

local function orphans(ctx, tbl)  -- table names and conditions are ours, not input
  return ctx.db:scalar("SELECT count(*) FROM " .. tbl .. " t WHERE " .. ORPHANED[tbl])
end

-- One cleanup step per table: back the orphans up, delete them; the rollback puts them back.
local function cleanup_step(tbl)
  return step(tbl) {
    when = function(ctx) return orphans(ctx, tbl) > 0 or "no orphaned " .. tbl end,
    confirm = { "Deletes orphaned " .. tbl .. " (copied to orphaned_data_backup first)", on_decline = "skip" },
    run = function(ctx)
      local saved = ctx.db:exec("INSERT INTO orphaned_data_backup (source_table, row_data, run) SELECT $1, to_jsonb(t), $2 FROM "
                                .. tbl .. " t WHERE " .. ORPHANED[tbl], tbl, ctx.run)
      local deleted = ctx.db:exec("DELETE FROM " .. tbl .. " t WHERE " .. ORPHANED[tbl])
      check(saved == deleted, "backed up %d orphaned %s but deleted %d", saved, tbl, deleted)
      return { deleted = deleted }
    end,
    rollback = function(ctx)
      ctx.db:exec("INSERT INTO " .. tbl .. " SELECT (jsonb_populate_record(NULL::" .. tbl .. ", row_data)).* "
                  .. "FROM orphaned_data_backup WHERE source_table = $1 AND run = $2", tbl, ctx.run)
      ctx.db:exec("DELETE FROM orphaned_data_backup WHERE source_table = $1 AND run = $2", tbl, ctx.run)
    end,
  }
end

runbook "troubleshoot.orphans" {
  title = "Orphaned records",
  description = "Finds submissions, points and attachments that point at nothing; backs them up and deletes them.",
  tags = { "troubleshoot", "data-integrity", "seed-004" },
  fixture = "leaps.sql",
  lock = true,

  phase "find" {
    step "count orphans" {
      run = function(ctx)
        local found = {
          submissions_without_user = health.orphans(ctx.db, "submissions", "user_id", "users"),
          submissions_without_activity = health.orphans(ctx.db, "submissions", "activity_code", "activities", "code"),
          points_without_user = health.orphans(ctx.db, "points_ledger", "user_id", "users"),
          points_without_activity = health.orphans(ctx.db, "points_ledger", "activity_code", "activities", "code"),
          attachments_without_submission = health.orphans(ctx.db, "submission_attachments", "submission_id", "submissions"),
        }
        audit.note("orphaned records found", found)
        return found
      end,
    },
  },

  phase "cleanup" {
    transaction = true,
    step "backup table" {
      -- Kept across runs (it is the backup), so there is nothing to roll back.
      run = function(ctx)
        ctx.db:exec([[CREATE TABLE IF NOT EXISTS orphaned_data_backup (
                        id BIGSERIAL PRIMARY KEY, source_table TEXT NOT NULL, row_data JSONB NOT NULL,
                        run TEXT NOT NULL, backed_up_at TIMESTAMPTZ NOT NULL DEFAULT now())]])
      end,
    },
    cleanup_step("submissions"),
    cleanup_step("points_ledger"),
    cleanup_step("submission_attachments"),
  },

  phase "verify" {
    step "no orphans left" {
      -- A table this run cleaned up must have no orphans left; one whose cleanup was declined
      -- (nothing of it backed up by this run) keeps them, and the note says how many.
      run = function(ctx)
        local remaining = {}
        for _, tbl in ipairs { "submissions", "points_ledger", "submission_attachments" } do
          local n = orphans(ctx, tbl)
          local cleaned = ctx.db:scalar("SELECT count(*) FROM orphaned_data_backup WHERE source_table = $1 AND run = $2",
                                        tbl, ctx.run) > 0
          check(n == 0 or not cleaned, "%d orphaned %s remain after the cleanup", n, tbl)
          remaining[tbl] = n
        end
        local saved = ctx.db:scalar("SELECT count(*) FROM orphaned_data_backup WHERE run = $1", ctx.run)
        audit.note("orphans cleaned up", { backed_up = saved, remaining = remaining })
        return { backed_up = saved }
      end,
    },
  },
}
