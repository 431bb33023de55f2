-- Seed 004 (Database Troubleshooting Guide), "Business Logic Violations - AMPLIFY Quota
-- Exceeded": participants refused by trg_check_amplify_quota ("Peer training limit exceeded").
-- Shows the limits check_amplify_quota() enforces (its constants), each participant's 7-day
-- AMPLIFY totals and who is at or near a limit. Two fixes, each only when asked for and
-- confirmed: "Adjust Quota Limits" (peer_limit / student_limit: the function is replaced with
-- the new constants; its old definition is kept in troubleshoot_backup and the rollback puts
-- it back) and "Manual Override" (override_user: one AMPLIFY submission inserted with the
-- trigger disabled -- inside the step's transaction, so no other session ever sees the table
-- without it; the row is recorded in troubleshoot_backup and the rollback deletes it).
-- Changing the business rule itself, and telling the participant, are the application's.
local rowbackup = require "rowbackup"

local FUNCTION = "check_amplify_quota()"
local LIMITS = [[SELECT substring(pg_get_functiondef($1::regprocedure) FROM 'peer_limit CONSTANT integer := (\d+)')::int AS peer_limit,
                        substring(pg_get_functiondef($1::regprocedure) FROM 'student_limit CONSTANT integer := (\d+)')::int AS student_limit]]
local TOTALS = [[
  SELECT u.id AS user_id, u.name, u.handle,
         coalesce(sum((s.payload->>'peersTrained')::int), 0)::int AS total_peers,
         coalesce(sum((s.payload->>'studentsTrained')::int), 0)::int AS total_students,
         count(*)::int AS amplify_submissions
  FROM submissions s JOIN users u ON s.user_id = u.id
  WHERE s.activity_code = 'AMPLIFY' AND s.created_at >= CURRENT_TIMESTAMP - INTERVAL '7 days'
    AND ($1 = '' OR u.handle = $1)
  GROUP BY u.id, u.name, u.handle ORDER BY total_peers DESC]]

local function limits(ctx) return ctx.db:query(LIMITS, FUNCTION)[1] end

-- Participants at or above `percent` of either limit.
local function near_limit(ctx)
  local l, out = limits(ctx), {}
  for _, t in ipairs(ctx.db:query(TOTALS, ctx.params.handle)) do
    if t.total_peers * 100 >= l.peer_limit * ctx.params.near_percent
       or t.total_students * 100 >= l.student_limit * ctx.params.near_percent then
      out[#out + 1] = t
    end
  end
  return out, l
end

runbook "troubleshoot.amplify_quota" {
  title = "AMPLIFY submissions refused: quota exceeded",
  description = "7-day AMPLIFY totals against the quota trigger's limits; raises the limits or inserts one submission past them.",
  tags = { "troubleshoot", "business-logic", "seed-004" },
  fixture = "leaps.sql",
  lock = true,
  params = {
    handle = { type = "string", default = "", doc = "only this participant (default: everyone with AMPLIFY work this week)" },
    near_percent = { type = "integer", default = 90, doc = "report participants at this share of a limit or more" },
    peer_limit = { type = "integer", default = 0, doc = "new 7-day peer limit (0: leave it)" },
    student_limit = { type = "integer", default = 0, doc = "new 7-day student limit (0: leave it)" },
    override_user = { type = "string", default = "", doc = "user id to insert one AMPLIFY submission for, past the quota" },
    override_peers = { type = "integer", default = 0, doc = "peersTrained of the override submission" },
    override_students = { type = "integer", default = 0, doc = "studentsTrained of the override submission" },
  },

  phase "diagnose" {
    step "quota trigger" {
      run = function(ctx)
        local trigger = ctx.db:query([[SELECT tgname, tgenabled FROM pg_trigger
                                       WHERE tgrelid = 'submissions'::regclass AND tgname = 'trg_check_amplify_quota']])[1]
        local l = limits(ctx)
        audit.note("amplify quota limits", { trigger = trigger and trigger.tgname or db.null,
                                             enabled = trigger ~= nil and trigger.tgenabled ~= "D",
                                             peer_limit = l.peer_limit, student_limit = l.student_limit })
        ctx.log(string.format("limits: %s peers, %s students in 7 days; trigger %s", tostring(l.peer_limit),
                              tostring(l.student_limit), trigger and "present" or "MISSING"))
        return l
      end,
    },
    step "7-day totals" {
      run = function(ctx)
        local totals = ctx.db:query(TOTALS, ctx.params.handle)
        for _, t in ipairs(totals) do
          ctx.log(string.format("%s (%s): %d peers, %d students, %d submissions", t.name, t.handle, t.total_peers,
                                t.total_students, t.amplify_submissions))
        end
        local near, l = near_limit(ctx)
        audit.note("participants near the amplify quota", { participants = #near, near_percent = ctx.params.near_percent,
                                                            peer_limit = l.peer_limit, student_limit = l.student_limit,
                                                            details = near })
        return { with_amplify = #totals, near_limit = #near }
      end,
    },
  },

  phase "fix" {
    transaction = true,
    step "adjust quota limits" {
      when = function(ctx)
        return (ctx.params.peer_limit > 0 or ctx.params.student_limit > 0) or "no new limit given (peer_limit, student_limit)"
      end,
      confirm = { "Replaces check_amplify_quota() with new 7-day limits", on_decline = "skip" },
      run = function(ctx)
        rowbackup.create(ctx, "troubleshoot_backup")
        ctx.db:exec([[INSERT INTO troubleshoot_backup (source_table, action, row_data, run)
                      SELECT 'function ' || $1, 'definition', jsonb_build_object('definition', pg_get_functiondef($1::regprocedure)), $2]],
                    FUNCTION, ctx.run)
        -- The new text is the server's own definition with the constants replaced by the
        -- (bound, integer) limits: no runbook input is spliced into SQL.
        local old = limits(ctx)
        local def = ctx.db:scalar([[SELECT regexp_replace(regexp_replace(pg_get_functiondef($1::regprocedure),
                                      'peer_limit CONSTANT integer := \d+', 'peer_limit CONSTANT integer := ' || $2::int),
                                      'student_limit CONSTANT integer := \d+', 'student_limit CONSTANT integer := ' || $3::int)]],
                                  FUNCTION, ctx.params.peer_limit > 0 and ctx.params.peer_limit or old.peer_limit,
                                  ctx.params.student_limit > 0 and ctx.params.student_limit or old.student_limit)
        ctx.db:exec(def)
        local new = limits(ctx)
        audit.note("amplify quota limits changed", { from = old, to = new })
        return new
      end,
      verify = function(ctx, new)
        check(ctx.params.peer_limit == 0 or new.peer_limit == ctx.params.peer_limit, "peer limit is %s", tostring(new.peer_limit))
        check(ctx.params.student_limit == 0 or new.student_limit == ctx.params.student_limit, "student limit is %s",
              tostring(new.student_limit))
      end,
      rollback = function(ctx)
        ctx.db:exec(ctx.db:scalar([[SELECT row_data->>'definition' FROM troubleshoot_backup
                                    WHERE source_table = $1 AND run = $2]], "function " .. FUNCTION, ctx.run))
        ctx.db:exec("DELETE FROM troubleshoot_backup WHERE source_table = $1 AND run = $2", "function " .. FUNCTION, ctx.run)
      end,
    },
    step "manual override" {
      when = function(ctx) return ctx.params.override_user ~= "" or "no override_user given" end,
      confirm = { "Inserts one AMPLIFY submission with the quota trigger disabled for this transaction", on_decline = "skip" },
      run = function(ctx)
        check(ctx.db:scalar("SELECT count(*) FROM users WHERE id = $1", ctx.params.override_user) == 1,
              "no user %s", ctx.params.override_user)
        rowbackup.create(ctx, "troubleshoot_backup")
        ctx.db:exec("ALTER TABLE submissions DISABLE TRIGGER trg_check_amplify_quota")
        local id = ctx.db:scalar([[INSERT INTO submissions (user_id, activity_code, status, payload, review_note)
                                   VALUES ($1, 'AMPLIFY', 'PENDING', jsonb_build_object('peersTrained', $2::int, 'studentsTrained', $3::int),
                                           'Inserted past the AMPLIFY quota by runbook run ' || $4) RETURNING id]],
                                 ctx.params.override_user, ctx.params.override_peers, ctx.params.override_students, ctx.run)
        ctx.db:exec("ALTER TABLE submissions ENABLE TRIGGER trg_check_amplify_quota")
        rowbackup.inserted(ctx, "troubleshoot_backup", "submissions", "id = $1", id)
        audit.note("amplify override", { submission = id, user_id = ctx.params.override_user })
        return { submission = id }
      end,
      verify = function(ctx)
        check(ctx.db:scalar([[SELECT tgenabled <> 'D' FROM pg_trigger WHERE tgrelid = 'submissions'::regclass
                              AND tgname = 'trg_check_amplify_quota']]), "the quota trigger is not enabled")
      end,
      rollback = function(ctx) rowbackup.restore(ctx, "troubleshoot_backup", "submissions") end,
    },
  },
}
