-- Seed 001 (Migration Execution Guide), "Troubleshooting" for the platform tables, by symptom:
-- "RLS Policies Not Working" (row level security off on a table, or a policy of migrations
-- 003-006 missing), "Slow Query Performance" (the guide's queries under EXPLAIN ANALYZE: on
-- their index, within `max_query_ms`; an INVALID index -- what a failed CREATE INDEX
-- CONCURRENTLY leaves -- is rebuilt). Read-only diagnosis first, every finding audited; each
-- fix asks for confirmation (declined: skipped, the run goes on) and records what it changes
-- before changing it; then the checks again: what is still wrong fails its check and the run
-- ends "succeeded with failures" (4).
local health = require "health"
local platform = require "platform"

--- Tables of the seed whose row level security is off.
local function rls_off(ctx)
  local off = {}
  for _, t in ipairs(platform.TABLES) do
    if not ctx.db:scalar("SELECT relrowsecurity FROM pg_class WHERE oid = $1::regclass", "public." .. t) then
      off[#off + 1] = t
    end
  end
  return off
end

--- Policies of migrations 003-006 that are missing: { { table =, policy = }, ... }.
local function missing_policies(ctx)
  local missing = {}
  for _, t in ipairs(platform.TABLES) do
    for name in pairs(platform.POLICIES[t]) do
      if ctx.db:scalar("SELECT count(*) FROM pg_policies WHERE schemaname = 'public' AND tablename = $1 AND policyname = $2",
                       t, name) == 0 then
        missing[#missing + 1] = { table = t, policy = name }
      end
    end
  end
  table.sort(missing, function(a, b) return a.policy < b.policy end)
  return missing
end

--- Invalid indexes in schema public, with their definitions (the backup of what REINDEX rebuilds).
local function invalid_indexes(ctx)
  return ctx.db:query([[SELECT c.relname AS index, i.indexrelid::regclass::text AS qualified, t.relname AS "table",
                               pg_get_indexdef(i.indexrelid) AS definition
                        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
                        WHERE NOT i.indisvalid AND c.relnamespace = 'public'::regnamespace ORDER BY 1]])
end

local function performance(ctx)
  return platform.performance(ctx.db, health, ctx.params.max_query_ms, not ctx.params.planner_choice)
end

local function none_left(what, list)
  return function(ctx)
    if #list(ctx) == 0 then return "no " .. what end
    return true
  end
end

runbook "troubleshoot.platform" {
  title = "Platform tables: row level security and slow queries",
  tags = { "troubleshoot", "seed-001" },
  fixture = "platform.sql",
  params = {
    max_query_ms = { type = "number", default = 50, doc = "the most a query of the guide may take (EXPLAIN ANALYZE), in ms" },
    planner_choice = { type = "boolean", default = false,
                       doc = "let the planner choose sequential scans (on big tables: the plan it really uses); "
                          .. "by default they are off, asking whether the index can serve the query" },
  },

  phase "diagnose" {
    step "row level security" {
      run = function(ctx)
        local r = { rls_disabled = rls_off(ctx), missing_policies = missing_policies(ctx) }
        audit.note("row level security", r)
        return r
      end,
    },
    step "invalid indexes" {
      run = function(ctx)
        local bad = invalid_indexes(ctx)
        audit.note("invalid indexes", { count = #bad, indexes = bad })
        return { count = #bad }
      end,
    },
    step "query performance" {
      run = function(ctx)
        local findings = performance(ctx)
        audit.note("query performance", { queries = findings, max_ms = ctx.params.max_query_ms })
        return { queries = findings }
      end,
    },
  },

  -- A fix that fails does not undo the others (turning security off again because an index
  -- could not be rebuilt would be worse): the checks below say what is still wrong.
  phase "fix" {
    on_error = "continue",
    step "enable row level security" {
      when = none_left("table with row level security off", rls_off),
      confirm = { "Enables row level security on the platform tables that have it off", on_decline = "skip" },
      run = function(ctx)
        local tables = rls_off(ctx)
        audit.note("enabling row level security", { tables = tables, relrowsecurity_before = false })
        for _, t in ipairs(tables) do ctx.db:exec("ALTER TABLE public." .. t .. " ENABLE ROW LEVEL SECURITY") end  -- our names
        return { tables = tables }
      end,
    },
    step "re-create missing policies" {
      when = none_left("missing policy", missing_policies),
      confirm = { "Creates the row level security policies of migrations 003-006 that are missing", on_decline = "skip" },
      run = function(ctx)
        local missing = missing_policies(ctx)
        ctx.db:transaction(function()
          for _, m in ipairs(missing) do  -- names and definitions: the runbook's own (lib/platform.lua)
            m.definition = platform.POLICIES[m.table][m.policy]
            ctx.db:exec(string.format("CREATE POLICY %s ON public.%s %s", m.policy, m.table, m.definition))
          end
        end)
        audit.note("policies re-created", { policies = missing })
        return { created = #missing }
      end,
    },
    step "rebuild invalid indexes" {
      when = none_left("invalid index", invalid_indexes),
      confirm = { "Rebuilds invalid indexes with REINDEX INDEX CONCURRENTLY", on_decline = "skip" },
      run = function(ctx)
        local bad = invalid_indexes(ctx)
        audit.note("rebuilding invalid indexes", { indexes = bad })  -- their definitions, before
        for _, i in ipairs(bad) do
          -- REINDEX takes no parameters: the name is the server's own, quoted by it (regclass)
          ctx.db:exec("REINDEX INDEX CONCURRENTLY " .. i.qualified)
        end
        return { rebuilt = #bad }
      end,
    },
  },

  phase "check again" {
    step "row level security is on" {
      on_error = "continue",
      run = function(ctx)
        local off = rls_off(ctx)
        check(#off == 0, "row level security is off on %s", table.concat(off, ", "))
      end,
    },
    step "every policy is there" {
      on_error = "continue",
      run = function(ctx)
        local names = {}
        for _, m in ipairs(missing_policies(ctx)) do names[#names + 1] = m.policy end
        check(#names == 0, "policies missing: %s", table.concat(names, ", "))
      end,
    },
    step "no invalid indexes" {
      on_error = "continue",
      run = function(ctx)
        local names = {}
        for _, i in ipairs(invalid_indexes(ctx)) do names[#names + 1] = i.index end
        check(#names == 0, "invalid indexes: %s", table.concat(names, ", "))
      end,
    },
    step "queries on their indexes, in time" {
      on_error = "continue",
      run = function(ctx)
        local findings = performance(ctx)
        for _, f in ipairs(findings) do check(f.ok, "%s", f.problem) end
        return { queries = findings }
      end,
    },
  },
}
