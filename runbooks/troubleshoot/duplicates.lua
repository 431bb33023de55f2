-- Seed 004 (Database Troubleshooting Guide), "Data Integrity Problems - Duplicate Data" and
-- "Multiple LEARN Submissions": a participant may hold one live (pending or approved) LEARN
-- submission, and a Kajabi event may be credited once. The latest of each stays; the older
-- LEARN submissions are rejected with a note (the guide's "keep latest, reject others"), the
-- extra points deleted. Every changed row is first copied to duplicate_data_backup, which the
-- rollback restores from. Run troubleshoot.leaderboard afterwards.
local LEARN_RANKED = [[SELECT id, row_number() OVER (PARTITION BY user_id ORDER BY created_at DESC) AS rn
                      FROM submissions WHERE activity_code = 'LEARN' AND status IN ('PENDING', 'APPROVED')]]
local EVENTS_RANKED = [[SELECT id, row_number() OVER (PARTITION BY external_event_id ORDER BY created_at DESC) AS rn
                       FROM points_ledger WHERE external_event_id IS NOT NULL]]

local function count(ctx, ranked) return ctx.db:scalar("SELECT count(*) FROM (" .. ranked .. ") r WHERE rn > 1") end

local function backup(ctx, tbl, ranked)  -- names and queries are ours, not input
  return ctx.db:exec("INSERT INTO duplicate_data_backup (source_table, row_data, run) SELECT $1, to_jsonb(t), $2 FROM "
                     .. tbl .. " t WHERE id IN (SELECT id FROM (" .. ranked .. ") r WHERE rn > 1)", tbl, ctx.run)
end

runbook "troubleshoot.duplicates" {
  title = "Duplicate LEARN submissions and external events",
  description = "Rejects all but the latest live LEARN submission per participant and removes points "
             .. "credited twice for one external event.",
  tags = { "troubleshoot", "data-integrity", "seed-004" },
  fixture = "leaps.sql",
  lock = true,

  phase "find" {
    step "duplicate LEARN submissions" {
      run = function(ctx)
        local users = ctx.db:query([[SELECT user_id, count(*) AS learn_submissions, array_agg(id ORDER BY created_at) AS submission_ids
                                     FROM submissions WHERE activity_code = 'LEARN' AND status IN ('PENDING', 'APPROVED')
                                     GROUP BY user_id HAVING count(*) > 1]])
        audit.note("duplicate LEARN submissions", { users = #users, extra = count(ctx, LEARN_RANKED), details = users })
        return { users = #users }
      end,
    },
    step "duplicate external events" {
      run = function(ctx)
        local events = ctx.db:query([[SELECT external_event_id, count(*) AS duplicate_count FROM points_ledger
                                      WHERE external_event_id IS NOT NULL GROUP BY external_event_id HAVING count(*) > 1]])
        audit.note("duplicate external events", { events = #events, extra = count(ctx, EVENTS_RANKED), details = events })
        return { events = #events }
      end,
    },
  },

  phase "cleanup" {
    transaction = true,
    step "backup table" {
      -- Kept across runs (it is the backup), so there is nothing to roll back.
      run = function(ctx)
        ctx.db:exec([[CREATE TABLE IF NOT EXISTS duplicate_data_backup (
                        id BIGSERIAL PRIMARY KEY, source_table TEXT NOT NULL, row_data JSONB NOT NULL,
                        run TEXT NOT NULL, backed_up_at TIMESTAMPTZ NOT NULL DEFAULT now())]])
      end,
    },
    step "reject older LEARN submissions" {
      when = function(ctx) return count(ctx, LEARN_RANKED) > 0 or "no duplicate LEARN submissions" end,
      confirm = { "Rejects every live LEARN submission but each participant's latest", on_decline = "skip" },
      run = function(ctx)
        backup(ctx, "submissions", LEARN_RANKED)
        local n = ctx.db:exec([[UPDATE submissions
                                SET status = 'REJECTED', review_note = 'Duplicate LEARN submission - keeping latest only',
                                    updated_at = now()
                                WHERE id IN (SELECT id FROM (]] .. LEARN_RANKED .. [[) r WHERE rn > 1)]])
        return { rejected = n }
      end,
      rollback = function(ctx)
        ctx.db:exec([[UPDATE submissions s SET status = b.row_data->>'status', review_note = b.row_data->>'review_note',
                                               updated_at = (b.row_data->>'updated_at')::timestamptz
                      FROM duplicate_data_backup b
                      WHERE b.source_table = 'submissions' AND b.run = $1 AND s.id = b.row_data->>'id']], ctx.run)
        ctx.db:exec("DELETE FROM duplicate_data_backup WHERE source_table = 'submissions' AND run = $1", ctx.run)
      end,
    },
    step "remove points credited twice" {
      when = function(ctx) return count(ctx, EVENTS_RANKED) > 0 or "no external event credited twice" end,
      confirm = { "Deletes all but the latest points_ledger row of each external event", on_decline = "skip" },
      run = function(ctx)
        backup(ctx, "points_ledger", EVENTS_RANKED)
        local n = ctx.db:exec("DELETE FROM points_ledger WHERE id IN (SELECT id FROM (" .. EVENTS_RANKED .. ") r WHERE rn > 1)")
        return { deleted = n }
      end,
      rollback = function(ctx)
        ctx.db:exec([[INSERT INTO points_ledger SELECT (jsonb_populate_record(NULL::points_ledger, row_data)).*
                      FROM duplicate_data_backup WHERE source_table = 'points_ledger' AND run = $1]], ctx.run)
        ctx.db:exec("DELETE FROM duplicate_data_backup WHERE source_table = 'points_ledger' AND run = $1", ctx.run)
      end,
    },
  },

  phase "verify" {
    step "no duplicates left" {
      -- What this run cleaned up must be clean; a declined cleanup (nothing of that table backed
      -- up by this run) leaves its duplicates, and the note says how many.
      run = function(ctx)
        local function cleaned(tbl)
          return ctx.db:scalar("SELECT count(*) FROM duplicate_data_backup WHERE source_table = $1 AND run = $2", tbl, ctx.run) > 0
        end
        local learn, events = count(ctx, LEARN_RANKED), count(ctx, EVENTS_RANKED)
        check(learn == 0 or not cleaned("submissions"), "%d duplicate live LEARN submissions remain", learn)
        check(events == 0 or not cleaned("points_ledger"), "%d duplicate external event credits remain", events)
        audit.note("duplicates remaining", { learn_submissions = learn, external_event_credits = events })
      end,
    },
  },
}
