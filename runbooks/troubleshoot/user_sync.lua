-- Seed 004 (Database Troubleshooting Guide), "Authentication & Authorization - User
-- Synchronization Issues" (the database half; the Clerk webhook itself is the application's):
-- users who sign in but are missing from the database show up as work (submissions, points,
-- matched Kajabi events) under a user id no users row has; rows with no name or email are the
-- "data mismatch". The fix is the guide's syncUserFromClerk upsert for one user, from the
-- Clerk dashboard's values (clerk_id, email, name): a missing user is created as PARTICIPANT
-- with a handle from the address's local part (made unique); an existing one gets the name
-- and email, never a new role. Confirmed; the row is copied to troubleshoot_backup first (or
-- recorded as inserted), and the rollback puts it back.
local rowbackup = require "rowbackup"

local MISSING = [[
  SELECT user_id, sum(submissions)::int AS submissions, sum(points)::int AS points, sum(events)::int AS kajabi_events
  FROM (SELECT user_id, count(*) AS submissions, 0 AS points, 0 AS events FROM submissions GROUP BY user_id
        UNION ALL SELECT user_id, 0, count(*), 0 FROM points_ledger GROUP BY user_id
        UNION ALL SELECT user_match, 0, 0, count(*) FROM kajabi_events
                  WHERE user_match IS NOT NULL AND user_match <> 'NO_USER_FOUND' GROUP BY user_match) w
  WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = w.user_id)
  GROUP BY user_id ORDER BY user_id]]

runbook "troubleshoot.user_sync" {
  title = "Users missing from the database or out of sync with Clerk",
  description = "Work under user ids with no user row, users without name or email; upserts one user from Clerk's values.",
  tags = { "troubleshoot", "auth", "seed-004" },
  fixture = "leaps.sql",
  lock = true,
  params = {
    clerk_id = { type = "string", default = "", doc = "the Clerk user id to create or update" },
    email = { type = "string", default = "", doc = "the Clerk user's primary email address" },
    name = { type = "string", default = "", doc = "the Clerk user's first and last name" },
  },

  phase "diagnose" {
    step "work of users not in the database" {
      run = function(ctx)
        local missing = ctx.db:query(MISSING)
        for _, m in ipairs(missing) do
          ctx.log(string.format("%s: %d submissions, %d points entries, %d Kajabi events, no user row", m.user_id,
                                m.submissions, m.points, m.kajabi_events))
        end
        audit.note("users missing", { users = #missing, details = missing })
        return { missing = #missing }
      end,
    },
    step "incomplete users" {
      run = function(ctx)
        local incomplete = ctx.db:query([[SELECT id, handle, name, email FROM users
                                          WHERE btrim(name) = '' OR btrim(email) = '' OR email NOT LIKE '%@%' ORDER BY id]])
        local latest = ctx.db:scalar("SELECT max(created_at)::text FROM users")
        audit.note("incomplete users", { users = #incomplete, details = incomplete, latest_user_created_at = latest })
        ctx.log("latest user created at " .. tostring(latest))
        return { incomplete = #incomplete }
      end,
    },
  },

  phase "sync" {
    transaction = true,
    step "upsert user from Clerk" {
      when = function(ctx) return ctx.params.clerk_id ~= "" or "no clerk_id given" end,
      confirm = { "Creates or updates the user clerk_id with the given email and name", on_decline = "skip" },
      run = function(ctx)
        local p = ctx.params
        check(p.email:find("@"), "email %q is not an address", p.email)
        check(p.name:find("%S"), "name is empty")
        rowbackup.create(ctx, "troubleshoot_backup")
        local saved = rowbackup.save(ctx, "troubleshoot_backup", "users", "id = $1", p.clerk_id)
        -- generateUniqueHandle: the local part, with a number when it is taken.
        local n = ctx.db:exec([[
          INSERT INTO users (id, handle, name, email, role)
          SELECT $1, CASE WHEN NOT EXISTS (SELECT 1 FROM users WHERE handle = base) THEN base
                          ELSE base || (SELECT count(*) + 1 FROM users WHERE handle LIKE base || '%') END,
                 $3, lower($2), 'PARTICIPANT'
          FROM (SELECT regexp_replace(lower(split_part($2, '@', 1)), '[^a-z0-9_]', '', 'g') AS base) h
          ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email]], p.clerk_id, p.email, p.name)
        if saved == 0 then rowbackup.inserted(ctx, "troubleshoot_backup", "users", "id = $1", p.clerk_id) end
        local user = ctx.db:query("SELECT id, handle, name, email, role FROM users WHERE id = $1", p.clerk_id)[1]
        audit.note("user synchronised", { created = saved == 0, user = user })
        return { created = saved == 0, upserted = n }
      end,
      rollback = function(ctx) rowbackup.restore(ctx, "troubleshoot_backup", "users") end,
    },
  },
}
