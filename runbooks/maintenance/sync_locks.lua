-- Seed 002 (Critical Fixes Migration Guide), 6.2 "Monitor Sync Locks", "Issue: Sync lock not
-- releasing" and Next Steps 5. "Set up alerts for stuck locks": every five minutes, the sync
-- locks that expired (a sync that crashed holding one blocks its page with a 409) are listed,
-- copied to sync_locks_expired (the backup: page, holder, times, this run's id), deleted, and
-- reported on the alert channels when there were any. Undoing the run puts them back.
runbook "maintenance.sync_locks" {
  title = "Clean up stuck sync locks",
  description = "Deletes expired sync_locks rows (kept in sync_locks_expired) and alerts when it found any.",
  tags = { "maintenance", "seed-002" },
  fixture = "sync_locks.sql",
  lock = true,
  schedule = { cron = "*/5 * * * *", tz = "UTC", missed = "skip" },
  params = {
    grace = { type = "duration", default = "0s", doc = "how long after it expired a lock is still left alone" },
    severity = { type = "enum", values = { "critical", "error", "warning", "info" }, default = "warning",
                 doc = "the alert's severity" },
  },

  phase "inspect" {
    step "stuck locks" {
      run = function(ctx)
        local locks = ctx.db:query([[SELECT page_id, locked_by, locked_at, expires_at,
                                            extract(epoch FROM now() - locked_at)::float8 AS duration_seconds
                                     FROM sync_locks WHERE expires_at < now() - make_interval(secs => $1)
                                     ORDER BY locked_at]], ctx.params.grace)
        audit.note("stuck sync locks", { count = #locks, locks = locks })
        return { count = #locks }
      end,
    },
  },

  phase "cleanup" {
    transaction = true,
    step "delete expired locks" {
      when = function(ctx)
        local n = ctx.db:scalar("SELECT count(*) FROM sync_locks WHERE expires_at < now() - make_interval(secs => $1)",
                                ctx.params.grace)
        return n > 0 or "no expired sync locks"
      end,
      confirm = { "Deletes expired sync locks (kept in sync_locks_expired)", on_decline = "skip" },
      run = function(ctx)
        ctx.db:exec([[CREATE TABLE IF NOT EXISTS sync_locks_expired (
                        page_id TEXT NOT NULL, locked_by TEXT NOT NULL, locked_at TIMESTAMPTZ NOT NULL,
                        expires_at TIMESTAMPTZ NOT NULL, removed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                        removed_by_run TEXT NOT NULL)]])
        local gone = ctx.db:query([[
          WITH gone AS (DELETE FROM sync_locks WHERE expires_at < now() - make_interval(secs => $1) RETURNING *)
          INSERT INTO sync_locks_expired (page_id, locked_by, locked_at, expires_at, removed_by_run)
          SELECT page_id, locked_by, locked_at, expires_at, $2 FROM gone
          RETURNING page_id, locked_by, expires_at]], ctx.params.grace, ctx.run)
        audit.note("sync locks deleted", { count = #gone, locks = gone })
        return { deleted = #gone }
      end,
      rollback = function(ctx)
        ctx.db:exec([[INSERT INTO sync_locks (page_id, locked_by, locked_at, expires_at)
                      SELECT page_id, locked_by, locked_at, expires_at FROM sync_locks_expired WHERE removed_by_run = $1
                      ON CONFLICT (page_id) DO NOTHING]], ctx.run)
        ctx.db:exec("DELETE FROM sync_locks_expired WHERE removed_by_run = $1", ctx.run)
      end,
    },
  },

  -- After the commit, from what was committed (so a resumed run reports the same).
  phase "report" {
    step "alert" {
      run = function(ctx)
        if not ctx.db:scalar("SELECT to_regclass('sync_locks_expired') IS NOT NULL") then
          return { alerted = false }  -- never cleaned up here (the deletion was declined)
        end
        local pages = ctx.db:query([[SELECT page_id, locked_by, expires_at FROM sync_locks_expired
                                     WHERE removed_by_run = $1 ORDER BY page_id]], ctx.run)
        if #pages == 0 then return { alerted = false } end
        local names = {}
        for i, p in ipairs(pages) do names[i] = p.page_id end
        local shown = table.concat(names, ", ", 1, math.min(#names, 10))
        if #names > 10 then shown = shown .. string.format(" and %d more", #names - 10) end
        alert.send {
          severity = ctx.params.severity,
          summary = string.format("%d stuck sync lock(s) removed: %s", #pages, shown),
          details = { locks = pages, hint = "a sync that crashed held them; its pages could not sync (409)" },
        }
        return { alerted = true, pages = names }
      end,
    },
  },
}
