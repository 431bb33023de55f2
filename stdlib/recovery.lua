-- Seed 004's emergency recovery for the LEAPS tracker (users, submissions, points_ledger,
-- submission_attachments): the "Recovery Verification" checks, the damage scan of "Complete
-- Database Corruption" (which tables can still be read), and the communication at the start and
-- end of a recovery. Shared by troubleshoot.recovery_check, damage_assessment,
-- restore_from_backup and point_in_time_recovery.
--   local recovery = require "recovery"
--   recovery.verify(ctx.db)            -- counts and referential integrity; fails naming orphans
--   recovery.unreadable(ctx.db)        -- { { table = "public.x", error = "..." }, ... }
local health = require "health"
local template = require "template"

local recovery = {}

--- The tables the seed's recovery steps count ("3. Verify restoration").
recovery.TABLES = { "users", "submissions", "points_ledger" }

--- "Data Consistency Checks": the headline counts (the seed's validation_checks).
function recovery.counts(db)
  return db:query([[
    SELECT (SELECT count(*) FROM users) AS users,
           (SELECT count(*) FROM submissions) AS submissions,
           (SELECT count(*) FROM points_ledger) AS points_entries,
           (SELECT count(*) FROM submissions WHERE status = 'APPROVED') AS approved_submissions,
           (SELECT max(total_points) FROM leaderboard_totals) AS top_user_points]])[1]
end

--- "Check referential integrity": orphaned submissions, points and attachments.
function recovery.orphans(db)
  return {
    submissions = health.orphans(db, "submissions", "user_id", "users"),
    points = health.orphans(db, "points_ledger", "user_id", "users"),
    attachments = health.orphans(db, "submission_attachments", "submission_id", "submissions"),
  }
end

--- Both checks, audited; raises a check failure when there are no users or any orphan.
--- Returns { counts = ..., orphaned = ... }.
function recovery.verify(db)
  local counts = recovery.counts(db)
  check(counts.users > 0, "no users: the restore is empty")
  audit.note("recovery counts", counts)
  local orphaned = recovery.orphans(db)
  audit.note("orphaned records", orphaned)
  check(orphaned.submissions + orphaned.points + orphaned.attachments == 0,
        "orphaned submissions: %d, orphaned points: %d, orphaned attachments: %d (run troubleshoot.orphans)",
        orphaned.submissions, orphaned.points, orphaned.attachments)
  return { counts = counts, orphaned = orphaned }
end

--- Every user table and populated materialized view read in full (each in a savepoint, so one
--- broken relation does not stop the scan): the ones that cannot be read, with the server's
--- error. A view never populated is not damage (troubleshoot.analytics refreshes it).
function recovery.unreadable(db)
  local broken = {}
  local relations = db:query([[SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c
                               JOIN pg_namespace n ON n.oid = c.relnamespace
                               WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated))
                                 AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                                 AND n.nspname NOT LIKE 'pg\_%' ORDER BY 1]])
  db:transaction(function()
    for _, r in ipairs(relations) do
      -- the name comes from the catalog, quoted by the server
      local ok, err = pcall(db.savepoint, db, "scan", function()
        -- every column of every row: an index-only scan would not read the table's pages
        db:scalar("SELECT count(*) FROM " .. r.name .. " r WHERE r::text IS NOT NULL")
      end)
      if not ok then
        broken[#broken + 1] = { table = r.name, error = type(err) == "table" and err.message or tostring(err),
                                sqlstate = type(err) == "table" and err.sqlstate or nil }
      end
    end
  end)
  return broken
end

--- Sends a communication template on the config's default channels (or `channel`); a message
--- that cannot be sent (no channels configured) is logged instead, saying why. Never fails.
function recovery.announce(ctx, severity, text, channel)
  local ok, err = pcall(alert.send, { severity = severity, summary = text, channel = channel })
  if not ok then ctx.log(text .. "\n(not sent: " .. tostring(err) .. ")") end
  return ok
end

--- The seed's technical-team alert when a recovery starts, filled from the run.
function recovery.started(ctx, vars)
  return template.render(template.recovery_started, vars, ctx)
end

return recovery
