-- Seed 004 (Database Troubleshooting Guide), "Authentication & Authorization - Role Permission
-- Issues": a user's role, the role distribution, and users whose role is none of the four
-- RBAC knows (a role the application cannot match locks its owner out), and whether a CHECK
-- constraint still guards the column. Fixes, each confirmed:
-- invalid roles that are a valid one in another case or with spaces ('admin', 'Reviewer ') are
-- normalised (others are reported, for a person to decide), and "Fix Role Assignment" / "Bulk
-- Role Updates": the users of `emails` (one address or several, comma-separated) get `role`.
-- Changed rows are copied to troubleshoot_backup first; the rollback puts them back. Role
-- synchronisation with Clerk is the application's.
local rowbackup = require "rowbackup"

local VALID = "('PARTICIPANT', 'REVIEWER', 'ADMIN', 'SUPERADMIN')"
local INVALID = "role NOT IN " .. VALID
local NORMALISABLE = INVALID .. " AND upper(btrim(role)) IN " .. VALID

-- The comma-separated addresses of the emails parameter, lower case.
local function emails(ctx)
  local out = {}
  for e in ctx.params.emails:gmatch("[^,%s]+") do out[#out + 1] = e:lower() end
  return out
end

runbook "troubleshoot.roles" {
  title = "Users cannot use the features of their role",
  description = "Role distribution and invalid roles; normalises invalid roles and assigns roles by email.",
  tags = { "troubleshoot", "auth", "seed-004" },
  fixture = "leaps.sql",
  lock = true,
  params = {
    emails = { type = "string", default = "", doc = "the user(s) to look at or assign `role` to, comma-separated" },
    role = { type = "enum", values = { "", "PARTICIPANT", "REVIEWER", "ADMIN", "SUPERADMIN" }, default = "",
             doc = "the role to give the users of `emails`" },
  },

  phase "diagnose" {
    step "users asked about" {
      when = function(ctx) return #emails(ctx) > 0 or "no emails given" end,
      run = function(ctx)
        local users = ctx.db:query([[SELECT id, name, email, role, created_at FROM users
                                     WHERE lower(email) = ANY($1::text[]) ORDER BY email]], db.array(emails(ctx)))
        for _, u in ipairs(users) do ctx.log(string.format("%s <%s>: %s", u.name, u.email, u.role)) end
        audit.note("users asked about", { asked = #emails(ctx), found = #users, details = users })
        return { found = #users }
      end,
    },
    step "role distribution" {
      run = function(ctx)
        local roles = ctx.db:query("SELECT role, count(*)::int AS user_count FROM users GROUP BY role ORDER BY role")
        for _, r in ipairs(roles) do ctx.log(string.format("%-14s %d", string.format("%q", r.role), r.user_count)) end
        audit.note("role distribution", { roles = roles })
        return { roles = #roles }
      end,
    },
    step "invalid roles" {
      run = function(ctx)
        local invalid = ctx.db:query("SELECT id, email, role, upper(btrim(role)) IN " .. VALID
                                     .. " AS normalisable FROM users WHERE " .. INVALID .. " ORDER BY id")
        local fixable = 0
        for _, u in ipairs(invalid) do
          if u.normalisable then fixable = fixable + 1 end
          ctx.log(string.format("%s <%s> has role %q%s", u.id, u.email, u.role, u.normalisable and "" or " (no valid role like it)"))
        end
        -- What should have refused them: a CHECK constraint on users.role (a restore may drop it).
        local guarded = ctx.db:scalar([[SELECT count(*) > 0 FROM pg_constraint WHERE conrelid = 'users'::regclass
                                        AND contype = 'c' AND convalidated AND pg_get_constraintdef(oid) LIKE '%role%']])
        if not guarded then ctx.log("no validated CHECK constraint guards users.role") end
        audit.note("invalid roles", { users = #invalid, normalisable = fixable, role_check = guarded, details = invalid })
        return { invalid = #invalid }
      end,
    },
  },

  phase "fix" {
    transaction = true,
    step "normalise invalid roles" {
      when = function(ctx)
        return ctx.db:scalar("SELECT count(*) FROM users WHERE " .. NORMALISABLE) > 0 or "no role to normalise"
      end,
      confirm = { "Rewrites invalid roles as the valid role they spell ('admin' -> 'ADMIN')", on_decline = "skip" },
      run = function(ctx)
        rowbackup.create(ctx, "troubleshoot_backup")
        local saved = rowbackup.save(ctx, "troubleshoot_backup", "users", NORMALISABLE)
        local n = ctx.db:exec("UPDATE users SET role = upper(btrim(role)) WHERE " .. NORMALISABLE)
        check(saved == n, "backed up %d users but changed %d", saved, n)
        return { normalised = n }
      end,
      rollback = function(ctx) rowbackup.restore(ctx, "troubleshoot_backup", "users") end,
    },
    step "assign role" {
      when = function(ctx)
        if #emails(ctx) == 0 or ctx.params.role == "" then return "no emails and role given" end
        return true
      end,
      confirm = { "Gives the users of `emails` the role `role`", on_decline = "skip" },
      run = function(ctx)
        local list = db.array(emails(ctx))
        local found = ctx.db:scalar("SELECT count(*) FROM users WHERE lower(email) = ANY($1::text[])", list)
        check(found == #emails(ctx), "%d of the %d addresses belong to no user", #emails(ctx) - found, #emails(ctx))
        rowbackup.create(ctx, "troubleshoot_backup")
        rowbackup.save(ctx, "troubleshoot_backup", "users", "lower(email) = ANY($1::text[]) AND role <> $2", list, ctx.params.role)
        local n = ctx.db:exec("UPDATE users SET role = $2 WHERE lower(email) = ANY($1::text[]) AND role <> $2", list, ctx.params.role)
        audit.note("roles assigned", { role = ctx.params.role, changed = n, asked = #emails(ctx) })
        return { changed = n }
      end,
      rollback = function(ctx) rowbackup.restore(ctx, "troubleshoot_backup", "users") end,
    },
  },
}
