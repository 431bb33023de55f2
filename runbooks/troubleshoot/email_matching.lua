-- Seed 004 (Database Troubleshooting Guide), "Webhook Integration Issues - Email Matching
-- Issues": Kajabi events marked NO_USER_FOUND although a user has the address in another case,
-- and addresses that two users share case-insensitively (the "multiple email addresses" a
-- person has to settle). The fix is the guide's case-insensitive re-match, and it finishes
-- what the first processing skipped: the LEARN points of each re-matched event are credited
-- (once per event), as troubleshoot.webhooks processes events. Confirmed; the events are
-- copied to troubleshoot_backup and the credited points recorded there first; the rollback
-- undoes both.
local rowbackup = require "rowbackup"
local kajabi = require "kajabi"

local REMATCHABLE = "t.user_match = 'NO_USER_FOUND' AND EXISTS (SELECT 1 FROM users u "
                 .. "WHERE lower(u.email) = lower(t.payload->>'email'))"

local function rematchable(ctx) return ctx.db:scalar("SELECT count(*) FROM kajabi_events t WHERE " .. REMATCHABLE) end

runbook "troubleshoot.email_matching" {
  title = "Webhooks say NO_USER_FOUND for existing users",
  description = "Case mismatches between Kajabi and user emails, shared addresses; re-matches events and credits their points.",
  tags = { "troubleshoot", "webhooks", "seed-004" },
  fixture = "leaps.sql",
  lock = true,

  phase "diagnose" {
    step "case mismatches" {
      run = function(ctx)
        local events = ctx.db:query([[SELECT ke.id, ke.payload->>'email' AS webhook_email, u.email AS user_email, u.id AS user_id
                                      FROM kajabi_events ke
                                      JOIN users u ON lower(u.email) = lower(ke.payload->>'email')
                                      WHERE ke.user_match = 'NO_USER_FOUND' ORDER BY ke.id]])
        for _, e in ipairs(events) do
          ctx.log(string.format("%s: webhook %s, user %s (%s)", e.id, e.webhook_email, e.user_email, e.user_id))
        end
        audit.note("email case mismatches", { events = #events, details = events })
        return { mismatched = #events }
      end,
    },
    step "shared addresses" {
      run = function(ctx)
        local shared = ctx.db:query([[SELECT lower(email) AS address, array_agg(id ORDER BY id) AS user_ids
                                      FROM users GROUP BY lower(email) HAVING count(*) > 1]])
        audit.note("addresses shared by users", { addresses = #shared, details = shared })
        if #shared > 0 then ctx.log(#shared .. " addresses belong to more than one user: a person must merge them") end
        return { shared = #shared }
      end,
    },
  },

  phase "fix" {
    transaction = true,
    step "re-match events" {
      when = function(ctx) return rematchable(ctx) > 0 or "no event to re-match" end,
      confirm = { "Matches NO_USER_FOUND events to users case-insensitively and credits their LEARN points", on_decline = "skip" },
      run = function(ctx)
        rowbackup.create(ctx, "troubleshoot_backup")
        local r = kajabi.process(ctx, "troubleshoot_backup", REMATCHABLE)
        audit.note("events re-matched", r)
        return r
      end,
      verify = function(ctx) check(rematchable(ctx) == 0, "%d events still unmatched", rematchable(ctx)) end,
      rollback = function(ctx)
        rowbackup.restore(ctx, "troubleshoot_backup", "points_ledger")
        rowbackup.restore(ctx, "troubleshoot_backup", "kajabi_events")
      end,
    },
  },
}
