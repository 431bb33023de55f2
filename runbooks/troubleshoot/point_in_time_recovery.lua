-- Seed 004 (Database Troubleshooting Guide), "Emergency Recovery - Point-in-Time Recovery" and
-- "Data Loss Scenarios" (user and submission recovery), for self-hosted PostgreSQL:
--   1. create a recovery database: a throwaway PostgreSQL started from a base backup
--      (pg_basebackup -Fp), on its own port and socket in $TMPDIR, never the live server;
--   2. restore it to a point in time: the WAL archive replayed up to target_time, then promoted;
--   3. extract what the live database lost: users, submissions and points entries that are in
--      the recovery copy but not live (by id);
--   4. apply them to production, confirmed, after a data-only dump of those tables;
--   5. reconcile: the recovery verification (counts, orphans).
-- The recovery database is stopped and removed by the step that says so, and whatever happens (a
-- failed step, Ctrl-C) when the run ends; a killed run's copy is swept by the next runbook
-- that starts a cluster (`runbook sandbox clean`). The team is told at the start and the end,
-- and the support team gets the guide's user notification.
local backup = require "backup"
local recovery = require "recovery"
local template = require "template"

-- What is recovered, parents first (submissions and points belong to users). Our names.
local TABLES = { "users", "submissions", "points_ledger" }

local copy        -- the recovery database (db.sandbox), from step 1 to its last step
local copy_db     -- a connection to it
local lost = 0    -- rows the live database lost, found in the copy
local copied      -- rows copied back, by table (nil until they are)

-- The connection to the recovery database; it lives only in the process that started it.
local function recovered()
  check(copy_db ~= nil, "the recovery database is gone (it lives only as long as the run's process): run the runbook again")
  return copy_db
end

-- Rows of `tbl` in the recovery copy whose id the live database does not have: { id, row }
-- with the row as JSON text (passed on as text, so every value arrives exactly as it was).
local function lost_rows(ctx, tbl)
  local live = {}
  for i, row in ipairs(ctx.db:query("SELECT id FROM " .. tbl)) do live[i] = row.id end
  return recovered():query("SELECT t.id, to_jsonb(t)::text AS row FROM " .. tbl .. " t WHERE NOT (t.id = ANY($1::text[])) ORDER BY t.id",
                       db.array(live))
end

local function lost_step(tbl)
  return step("lost " .. tbl) {
    run = function(ctx)
      local rows = lost_rows(ctx, tbl)
      local ids = {}
      for i, r in ipairs(rows) do ids[i] = r.id end
      audit.note("lost " .. tbl, { count = #ids, ids = ids })
      lost = lost + #ids
      return { lost = #ids }
    end,
  }
end

local function total_lost(ctx)
  local n = 0
  for _, t in ipairs(TABLES) do n = n + #lost_rows(ctx, t) end
  return n
end

runbook "troubleshoot.point_in_time_recovery" {
  title = "Point-in-time recovery of lost users and submissions",
  description = "Recovers a copy of the database to a point in time from a base backup and the WAL archive, "
             .. "and copies the users, submissions and points the live database lost back into it.",
  tags = { "troubleshoot", "recovery", "seed-004" },
  fixture = "recovered.sql",
  lock = true,
  escalation = "recovery",
  params = {
    base_backup = { type = "string", required = true, doc = "a plain-format base backup (pg_basebackup -Fp -D DIR)" },
    wal_archive = { type = "string", required = true, doc = "the directory archive_command copies WAL segments into" },
    target_time = { type = "string", required = true, doc = "recover to this time, e.g. '2026-12-03 10:15:00+00'" },
    backup_dir = { type = "string", required = true, doc = "where the tables are dumped before rows are copied back" },
    reason = { type = "string", default = "data loss", doc = "why, for the start message" },
    oncall = { type = "string", default = "@technical-lead", doc = "who is on call, for the messages" },
    postmortem = { type = "string", default = "a time to be agreed", doc = "when the post-mortem is" },
    support_channel = { type = "string", default = "support", doc = "the channel the user notification goes to" },
  },

  phase "announce" {
    step "recovery started" {
      run = function(ctx)
        local text = recovery.started(ctx, { reason = ctx.params.reason, oncall = ctx.params.oncall,
                                             method = "point-in-time recovery to " .. ctx.params.target_time })
        return { sent = recovery.announce(ctx, "critical", text) }
      end,
    },
  },

  phase "recovery database" {
    step "start the recovery database" {
      timeout = "1h",
      run = function(ctx)
        lost, copied = 0, nil
        copy = db.sandbox { base_backup = ctx.params.base_backup, wal_archive = ctx.params.wal_archive,
                            recovery_target_time = ctx.params.target_time, timeout = 3000,
                            database = ctx.db:scalar("SELECT current_database()") }
        copy_db = db.connect(copy:dsn())
        local at = copy_db:query([[SELECT pg_is_in_recovery() AS in_recovery,
                                          pg_last_xact_replay_timestamp()::text AS replayed_to]])[1]
        check(not at.in_recovery, "the recovery database was not promoted")
        audit.note("recovery database ready", { target_time = ctx.params.target_time, replayed_to = at.replayed_to })
        return at
      end,
    },
    lost_step("users"),
    lost_step("submissions"),
    lost_step("points_ledger"),
  },

  phase "apply" {
    step "backup before applying" {
      when = function(ctx) return total_lost(ctx) > 0 or "nothing was lost" end,
      run = function(ctx)
        return backup.dump(ctx, { dir = ctx.params.backup_dir, name = "before_recovery", tables = TABLES, data_only = true })
      end,
    },
    step "copy lost rows back" {
      when = function(ctx) return total_lost(ctx) > 0 or "nothing was lost" end,
      confirm = { "Inserts the users, submissions and points entries the live database lost, from the recovery copy",
                  on_decline = "skip" },
      run = function(ctx)
        copied = {}
        ctx.db:transaction(function()
          for _, t in ipairs(TABLES) do  -- parents first
            local rows = {}
            for i, r in ipairs(lost_rows(ctx, t)) do rows[i] = r.row end
            copied[t] = 0
            if #rows > 0 then
              copied[t] = ctx.db:exec("INSERT INTO " .. t .. " SELECT * FROM jsonb_populate_recordset(NULL::" .. t
                                      .. ", $1::jsonb) ON CONFLICT (id) DO NOTHING", "[" .. table.concat(rows, ",") .. "]")
            end
          end
        end)
        audit.note("rows recovered", copied)
        return copied
      end,
    },
  },

  phase "reconcile" {
    step "stop the recovery database" {
      run = function()
        if copy_db then copy_db:close() end
        if copy then copy:close() end
        copy, copy_db = nil, nil
      end,
    },
    step "recovery verification" {
      run = function(ctx)
        if ctx.db:scalar("SELECT to_regprocedure('refresh_all_analytics()') IS NOT NULL") then
          ctx.db:exec("SELECT refresh_all_analytics()")
        end
        return recovery.verify(ctx.db)
      end,
    },
    step "recovery completed" {
      when = function() return copied ~= nil or lost == 0 or "the lost rows were not copied back" end,
      run = function(ctx)
        local lines = {}
        for _, t in ipairs(TABLES) do
          lines[#lines + 1] = string.format("- %s: %d rows recovered from the copy at %s", t, (copied or {})[t] or 0, ctx.params.target_time)
        end
        local text = template.render(template.recovery_completed, {
          affected = "users whose rows were lost",
          data_loss = "changes after " .. ctx.params.target_time .. " to the recovered rows",
          recovery_summary = table.concat(lines, "\n"),
          postmortem = ctx.params.postmortem, oncall = ctx.params.oncall,
        }, ctx)
        local users = template.render(template.user_data_loss, {
          platform = "MS Elevate Platform", audience = "Elevate Participant", team = "MS Elevate Team",
          recovered_window = "up to " .. ctx.params.target_time,
          resubmit_window = "submitted after " .. ctx.params.target_time,
        })
        return { team = recovery.announce(ctx, "info", text),
                 users = recovery.announce(ctx, "info", users, ctx.params.support_channel) }
      end,
    },
  },
}
