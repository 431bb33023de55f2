-- Seed 004 (Database Troubleshooting Guide), "Webhook Integration Issues - Kajabi Webhook
-- Failures" (the database half; the endpoint's 500s are the application's): the backlog of
-- unprocessed events and its age, those older than `stale_after` (failed, not just queued),
-- events received twice (same payload) and events credited twice. Fixes, each confirmed:
-- "Handle Duplicate Events" (later copies of a payload deleted, first copied to
-- troubleshoot_backup), then "Reprocess Failed Webhooks" as the guide's processKajabiEvent does
-- it, in SQL: match the user by email (case-insensitively: see troubleshoot.email_matching),
-- credit the LEARN points once per event (external_event_id), mark the event processed with
-- the user or NO_USER_FOUND. Duplicates go first so a retried delivery is never credited
-- twice. Events credited twice in the past are troubleshoot.duplicates' to remove.
local rowbackup = require "rowbackup"
local kajabi = require "kajabi"

local DUPLICATES = [[SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY payload ORDER BY received_at, id) AS rn
                                     FROM kajabi_events) d WHERE rn > 1]]
local UNPROCESSED = "t.processed_at IS NULL AND t.payload->>'email' IS NOT NULL"  -- processable

local function count(ctx, sql) return ctx.db:scalar("SELECT count(*) FROM (" .. sql .. ") c") end

runbook "troubleshoot.webhooks" {
  title = "Kajabi webhook events not processed",
  description = "Webhook backlog, failed and duplicate events; removes duplicates and reprocesses the backlog.",
  tags = { "troubleshoot", "webhooks", "seed-004" },
  fixture = "leaps.sql",
  lock = true,
  params = {
    stale_after = { type = "duration", default = "1h", doc = "an unprocessed event older than this has failed" },
  },

  phase "diagnose" {
    step "backlog" {
      run = function(ctx)
        local b = ctx.db:query([[SELECT count(*)::int AS unprocessed,
                                        coalesce(extract(epoch FROM now() - min(received_at)), 0)::float8 AS oldest_seconds
                                 FROM kajabi_events WHERE processed_at IS NULL]])[1]
        local failed = ctx.db:query([[SELECT id, received_at::text, payload->>'event_type' AS event_type,
                                             payload->>'email' AS email, payload->>'product_name' AS course, user_match
                                      FROM kajabi_events
                                      WHERE processed_at IS NULL AND received_at < now() - make_interval(secs => $1)
                                      ORDER BY received_at]], ctx.params.stale_after)
        for _, f in ipairs(failed) do
          ctx.log(string.format("%s (%s, %s) unprocessed since %s", f.id, tostring(f.email), tostring(f.course), f.received_at))
        end
        audit.note("webhook backlog", { unprocessed = b.unprocessed, oldest_seconds = b.oldest_seconds,
                                        failed = #failed, stale_after_seconds = ctx.params.stale_after, details = failed })
        return { unprocessed = b.unprocessed, failed = #failed }
      end,
    },
    step "duplicate events" {
      run = function(ctx)
        local groups = ctx.db:query([[SELECT array_agg(id ORDER BY received_at, id) AS ids, count(*)::int AS copies
                                      FROM kajabi_events GROUP BY payload HAVING count(*) > 1]])
        local credited = ctx.db:query([[SELECT external_event_id, count(*)::int AS credits FROM points_ledger
                                        WHERE external_source = 'kajabi' GROUP BY external_event_id HAVING count(*) > 1]])
        audit.note("duplicate webhook events", { received_twice = count(ctx, DUPLICATES), groups = groups,
                                                 credited_twice = #credited, credits = credited })
        if #credited > 0 then ctx.log(#credited .. " events credited more than once: run troubleshoot.duplicates") end
        return { duplicates = count(ctx, DUPLICATES), credited_twice = #credited }
      end,
    },
  },

  phase "fix" {
    transaction = true,
    step "remove duplicate events" {
      when = function(ctx) return count(ctx, DUPLICATES) > 0 or "no event received twice" end,
      confirm = { "Deletes every copy of a Kajabi event but the first received", on_decline = "skip" },
      run = function(ctx)
        rowbackup.create(ctx, "troubleshoot_backup")
        local saved = rowbackup.save(ctx, "troubleshoot_backup", "kajabi_events", "id IN (" .. DUPLICATES .. ")")
        local n = ctx.db:exec("DELETE FROM kajabi_events WHERE id IN (" .. DUPLICATES .. ")")
        check(saved == n, "backed up %d events but deleted %d", saved, n)
        return { deleted = n }
      end,
      rollback = function(ctx) rowbackup.restore(ctx, "troubleshoot_backup", "kajabi_events") end,
    },
    step "reprocess unprocessed events" {
      when = function(ctx) return count(ctx, "SELECT 1 FROM kajabi_events t WHERE " .. UNPROCESSED) > 0 or "no unprocessed event" end,
      confirm = { "Credits LEARN points for unprocessed Kajabi events and marks them processed", on_decline = "skip" },
      run = function(ctx)
        rowbackup.create(ctx, "troubleshoot_backup")
        local r = kajabi.process(ctx, "troubleshoot_backup", UNPROCESSED)
        audit.note("webhook events reprocessed", r)
        return r
      end,
      verify = function(ctx)
        local left = count(ctx, "SELECT 1 FROM kajabi_events t WHERE " .. UNPROCESSED)
        check(left == 0, "%d events are still unprocessed", left)
      end,
      rollback = function(ctx)
        rowbackup.restore(ctx, "troubleshoot_backup", "points_ledger")
        rowbackup.restore(ctx, "troubleshoot_backup", "kajabi_events")
      end,
    },
  },
}
