-- Seed 004 (Database Troubleshooting Guide), "Emergency Recovery - Complete Database
-- Corruption", immediate action 2: "Assess damage scope - Check which tables are affected".
-- Read-only: every table and materialized view read in full (each in a savepoint, the error
-- kept), indexes left invalid, orphaned records ("Recovery Verification"), row counts against
-- the minimums the operator expects, and amcheck's B-tree checks when the extension can be
-- had (creating it is the one change, and it is asked for). The verdict fails the run, naming
-- every finding, so a damaged database opens an incident under the `recovery` escalation
-- policy (runbooks/troubleshoot/recovery.config: the guide's recovery SLAs).
-- Then: troubleshoot.restore_from_backup or troubleshoot.point_in_time_recovery.
local recovery = require "recovery"
local health = require "health"

local found  -- what this run found, filled by the assess steps and judged by the verdict

local COUNTED = { users = "min_users", submissions = "min_submissions", points_ledger = "min_points" }

-- A count that may fail on a damaged table: the number, or nil and the error. (No phase here
-- is transactional: a failed statement leaves the session as it was.)
local function try_scalar(db, sql)
  local ok, v = pcall(db.scalar, db, sql)
  if ok then return v end
  return nil, type(v) == "table" and v.message or tostring(v)
end

local function amcheck_installed(ctx)
  return ctx.db:scalar("SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'") == 1
end

runbook "troubleshoot.damage_assessment" {
  title = "Assess database damage",
  description = "Finds unreadable tables, invalid or corrupt indexes, orphans and missing rows; fails naming them.",
  tags = { "troubleshoot", "recovery", "seed-004" },
  fixture = "damaged.sql",
  escalation = "recovery",
  params = {
    min_users = { type = "integer", default = 1, doc = "fewer users than this is data loss" },
    min_submissions = { type = "integer", default = 1, doc = "fewer submissions than this is data loss" },
    min_points = { type = "integer", default = 1, doc = "fewer points_ledger entries than this is data loss" },
    amcheck = { type = "boolean", default = true, doc = "check B-tree indexes with amcheck (bt_index_check)" },
  },

  phase "assess" {
    step "unreadable relations" {
      run = function(ctx)
        found = { unreadable = {}, invalid_indexes = {}, orphans = {}, short = {}, corrupt_indexes = {} }
        found.unreadable = recovery.unreadable(ctx.db)
        audit.note("unreadable relations", { count = #found.unreadable, relations = found.unreadable })
        return { unreadable = #found.unreadable }
      end,
    },
    step "invalid indexes" {
      run = function(ctx)
        found.invalid_indexes = ctx.db:query([[
          SELECT format('%I.%I', n.nspname, c.relname) AS index, i.indrelid::regclass::text AS "table",
                 i.indisvalid AS valid, i.indisready AS ready
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE (NOT i.indisvalid OR NOT i.indisready) AND n.nspname NOT IN ('pg_catalog', 'pg_toast')
          ORDER BY 1]])
        audit.note("invalid indexes", { count = #found.invalid_indexes, indexes = found.invalid_indexes })
        return { invalid = #found.invalid_indexes }
      end,
    },
    step "orphaned records" {
      run = function(ctx)
        local checks = {
          submissions = { "submissions", "user_id", "users" },
          points = { "points_ledger", "user_id", "users" },
          attachments = { "submission_attachments", "submission_id", "submissions" },
        }
        local counts = {}
        for what, c in pairs(checks) do
          local ok, n = pcall(health.orphans, ctx.db, c[1], c[2], c[3])
          counts[what] = ok and n or ("unreadable: " .. (type(n) == "table" and n.message or tostring(n)))
          if not ok or n > 0 then found.orphans[what] = counts[what] end
        end
        audit.note("orphaned records", counts)
        return counts
      end,
    },
    step "row counts" {
      run = function(ctx)
        local counts = {}
        for tbl, param in pairs(COUNTED) do  -- table names are ours, not input
          local n, err = try_scalar(ctx.db, "SELECT count(*) FROM " .. tbl)
          counts[tbl] = n or ("unreadable: " .. err)
          if n == nil or n < ctx.params[param] then
            found.short[tbl] = { rows = counts[tbl], expected_at_least = ctx.params[param] }
          end
        end
        audit.note("row counts", counts)
        return counts
      end,
    },
    step "amcheck extension" {
      when = function(ctx)
        if not ctx.params.amcheck then return "amcheck=false" end
        if amcheck_installed(ctx) then return "amcheck is installed" end
        return ctx.db:scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'amcheck'") == 1
               or "amcheck is not available on this server"
      end,
      confirm = { "Creates the amcheck extension (its functions only read; no data changes)", on_decline = "skip" },
      run = function(ctx) ctx.db:exec("CREATE EXTENSION IF NOT EXISTS amcheck") end,
    },
    step "btree indexes (amcheck)" {
      when = function(ctx)
        if not ctx.params.amcheck then return "amcheck=false" end
        return amcheck_installed(ctx) or "amcheck is not installed"
      end,
      run = function(ctx)
        local indexes = ctx.db:query([[
          SELECT format('%I.%I', n.nspname, c.relname) AS index FROM pg_index i
          JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_am am ON am.oid = c.relam
          WHERE am.amname = 'btree' AND i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'pg_toast', 'information_schema')
          ORDER BY 1]])
        local checked = 0
        for _, ix in ipairs(indexes) do
          -- heapallindexed: every row of the table must be found in the index
          local ok, err = pcall(ctx.db.exec, ctx.db, "SELECT bt_index_check($1::regclass, true)", ix.index)
          checked = checked + 1
          if not ok then
            found.corrupt_indexes[#found.corrupt_indexes + 1] =
              { index = ix.index, error = type(err) == "table" and err.message or tostring(err) }
          end
        end
        audit.note("amcheck", { checked = checked, failed = found.corrupt_indexes })
        return { checked = checked, failed = #found.corrupt_indexes }
      end,
    },
  },

  phase "verdict" {
    step "damage scope" {
      run = function(ctx)
        local problems = {}
        for _, r in ipairs(found.unreadable) do problems[#problems + 1] = r.table .. " unreadable (" .. r.error .. ")" end
        for _, i in ipairs(found.invalid_indexes) do problems[#problems + 1] = "index " .. i.index .. " invalid" end
        for _, i in ipairs(found.corrupt_indexes) do problems[#problems + 1] = "index " .. i.index .. " corrupt (" .. i.error .. ")" end
        for what, n in pairs(found.orphans) do problems[#problems + 1] = tostring(n) .. " orphaned " .. what end
        for tbl, s in pairs(found.short) do
          problems[#problems + 1] = string.format("%s: %s rows, at least %d expected", tbl, tostring(s.rows), s.expected_at_least)
        end
        table.sort(problems)
        audit.note("damage scope", { damaged = #problems > 0, problems = problems })
        check(#problems == 0, "damage found: %s", table.concat(problems, "; "))
        return { damaged = false }
      end,
    },
  },
}
