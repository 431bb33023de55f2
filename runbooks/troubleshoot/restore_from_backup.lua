-- Seed 004 (Database Troubleshooting Guide), "Emergency Recovery - Complete Database
-- Corruption", recovery steps 2-5: restore the database from a backup (pg_dump -Fc), verify the
-- restoration (the guide's counts and "Recovery Verification"), refresh the materialized views,
-- run the health checks. Step 1 (scale the applications to zero) is outside the database: do
-- it first; the health checks and step 6 (restart them) are the checklist a person confirms.
-- Before anything is replaced: the backup is proved by restoring it into a throwaway
-- PostgreSQL, and the current (damaged) state is dumped to backup_dir -- the rows of tables
-- that can no longer be read are left out of that dump, their definitions kept.
-- The technical team is told when the recovery starts and when it completes (the guide's
-- "Technical Team Alert"), and the support team gets the guide's user notification; a failed
-- run opens an incident under the `recovery` policy (runbooks/troubleshoot/recovery.config).
local backup = require "backup"
local recovery = require "recovery"
local template = require "template"

local state = {}  -- this run's findings: the damage before, when the backup was taken

local function counts(db)
  local out = {}
  for _, t in ipairs(recovery.TABLES) do  -- our names, not input
    local ok, n = pcall(db.scalar, db, "SELECT count(*) FROM " .. t)
    out[t] = ok and n or "unreadable"
  end
  return out
end

runbook "troubleshoot.restore_from_backup" {
  title = "Restore the database from a backup",
  description = "Verifies a backup, dumps the current state, restores the backup behind a confirmation, "
             .. "refreshes the views and verifies the recovery; tells the team at the start and the end.",
  tags = { "troubleshoot", "recovery", "seed-004" },
  fixture = "damaged.sql",
  lock = true,
  escalation = "recovery",
  params = {
    dump = { type = "string", required = true, doc = "the backup to restore (pg_dump -Fc)" },
    backup_dir = { type = "string", required = true, doc = "where the current state is dumped before it is replaced" },
    reason = { type = "string", default = "database corruption", doc = "why, for the start message" },
    oncall = { type = "string", default = "@technical-lead", doc = "who is on call, for the messages" },
    postmortem = { type = "string", default = "a time to be agreed", doc = "when the post-mortem is" },
    support_channel = { type = "string", default = "support", doc = "the channel the user notification goes to" },
  },

  phase "announce" {
    step "recovery started" {
      run = function(ctx)
        local text = recovery.started(ctx, { reason = ctx.params.reason, oncall = ctx.params.oncall,
                                             method = "restore from the backup " .. ctx.params.dump })
        return { sent = recovery.announce(ctx, "critical", text) }
      end,
    },
  },

  phase "preflight" {
    step "the backup restores" {
      run = function(ctx)
        local _, listing = shell.run { db.pg_bin("pg_restore"), "--list", ctx.params.dump, check = true }
        state.taken = listing:match("Archive created at ([^\n]+)") or "an unknown time"
        backup.verify(ctx, ctx.params.dump)  -- a restore into a throwaway PostgreSQL
        return { taken = state.taken }
      end,
    },
    step "damage before" {
      run = function(ctx)
        state.unreadable = recovery.unreadable(ctx.db)
        state.before = counts(ctx.db)
        audit.note("state before the restore", { counts = state.before, unreadable = state.unreadable })
        return state.before
      end,
    },
  },

  phase "backup" {
    step "current state" {
      run = function(ctx)
        local skip = {}
        for _, r in ipairs(state.unreadable) do skip[#skip + 1] = r.table end
        return backup.dump(ctx, { dir = ctx.params.backup_dir, name = "before_restore", exclude_table_data = skip })
      end,
    },
  },

  phase "restore" {
    step "restore from the backup" {
      confirm = { "Replaces every table of the database with the backup's (the current state was dumped first)",
                  on_decline = "skip" },
      run = function(ctx)
        backup.restore(ctx, { file = ctx.params.dump })
        state.restored = true
        return counts(ctx.db)
      end,
    },
    step "refresh materialized views" {
      run = function(ctx)
        if ctx.db:scalar("SELECT to_regprocedure('refresh_all_analytics()') IS NOT NULL") then
          ctx.db:exec("SELECT refresh_all_analytics()")  -- the guide's step 4
          return { refreshed = "refresh_all_analytics()" }
        end
        local views = ctx.db:query([[SELECT format('%I.%I', schemaname, matviewname) AS name FROM pg_matviews ORDER BY 1]])
        for _, v in ipairs(views) do ctx.db:exec("REFRESH MATERIALIZED VIEW " .. v.name) end  -- names from the catalog
        return { refreshed = #views }
      end,
    },
  },

  phase "verify" {
    step "recovery verification" {
      run = function(ctx) return recovery.verify(ctx.db) end,
    },
  },

  -- The guide's steps 5 and 6 are outside the database: a person confirms them.
  checklist "back online" {
    { "every table can be read", check = function(ctx)
        local broken = {}
        for _, r in ipairs(recovery.unreadable(ctx.db)) do broken[#broken + 1] = r.table end
        return #broken == 0, #broken == 0 and "all readable" or "unreadable: " .. table.concat(broken, ", ")
      end },
    { "health checks pass", manual = "curl -f \"$STAGING_URL/api/health/database\" answers 200" },
    { "applications restarted", manual = "kubectl scale deployment elevate-web --replicas=2 and elevate-admin --replicas=1" },
  },

  phase "communicate" {
    step "recovery completed" {
      when = function() return state.restored or "the backup was not restored" end,
      run = function(ctx)
        local after, lines = counts(ctx.db), {}
        for _, t in ipairs(recovery.TABLES) do
          lines[#lines + 1] = string.format("- %s: %s rows (before the restore: %s)", t, tostring(after[t]), tostring(state.before[t]))
        end
        lines[#lines + 1] = "- Analytics: materialized views refreshed"
        local team = template.render(template.recovery_completed, {
          affected = "all users of database " .. ctx.db:scalar("SELECT current_database()"),
          data_loss = "changes since the backup of " .. state.taken,
          recovery_summary = table.concat(lines, "\n"),
          postmortem = ctx.params.postmortem, oncall = ctx.params.oncall,
        }, ctx)
        local users = template.render(template.user_data_loss, {
          platform = "MS Elevate Platform", audience = "Elevate Participant", team = "MS Elevate Team",
          recovered_window = "up to " .. state.taken, resubmit_window = "submitted after " .. state.taken,
        })
        return { team = recovery.announce(ctx, "info", team),
                 users = recovery.announce(ctx, "info", users, ctx.params.support_channel) }
      end,
    },
  },
}
