-- Seed 004 (Database Troubleshooting Guide), "Performance Issues - Slow Queries": what is
-- running now, which indexes are never used, and how the tracker's hot queries are planned
-- (the leaderboard, a participant's submissions and points, the review queue) and really run:
-- EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) gives each one's plan nodes, sequential scans of big
-- tables, buffers and timings, audited; a sequential scan of a big table is answered with the
-- guide's index for that query ("Add Missing Indexes"). Only these fixed queries are explained
-- and run (they only read): a runbook never runs SQL handed to it as a parameter. The fix, each
-- missing index of the guide built CONCURRENTLY, asks first; declined, the run still reports.
local INDEXES = {
  { name = "idx_submissions_user_activity", definition = "ON submissions (user_id, activity_code, status)" },
  { name = "idx_points_ledger_user_created", definition = "ON points_ledger (user_id, created_at DESC)" },
  { name = "idx_submissions_created_status", definition = "ON submissions (created_at, status) WHERE status = 'PENDING'" },
}
local QUERIES = {
  { name = "leaderboard", sql = "SELECT * FROM leaderboard_totals ORDER BY total_points DESC LIMIT 20" },
  { name = "participant submissions", index = "idx_submissions_user_activity",
    sql = "SELECT * FROM submissions WHERE user_id = $1 AND activity_code = 'LEARN' AND status = 'APPROVED'", arg = "user_01" },
  { name = "participant points", index = "idx_points_ledger_user_created",
    sql = "SELECT * FROM points_ledger WHERE user_id = $1 ORDER BY created_at DESC LIMIT 20", arg = "user_01" },
  { name = "review queue", index = "idx_submissions_created_status",
    sql = "SELECT * FROM submissions WHERE status = 'PENDING' ORDER BY created_at LIMIT 50" },
}

local function index_exists(ctx, name) return ctx.db:scalar("SELECT to_regclass($1) IS NOT NULL", name) end

-- The plan's nodes, depth first: { type, relation, rows, filter, ms }.
local function nodes(plan, out)
  out = out or {}
  out[#out + 1] = { type = plan["Node Type"], relation = plan["Relation Name"], index = plan["Index Name"],
                    rows = (plan["Actual Rows"] or 0) * (plan["Actual Loops"] or 1), filter = plan["Filter"],
                    ms = plan["Actual Total Time"] }
  for _, child in ipairs(plan.Plans or {}) do nodes(child, out) end
  return out
end

-- EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of one of QUERIES: what an SRE reads in it.
local function analyze(ctx, q)
  local sql = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " .. q.sql
  local row = (q.arg and ctx.db:query(sql, q.arg) or ctx.db:query(sql))[1]
  local top = row["QUERY PLAN"][1]
  local report = { execution_ms = top["Execution Time"], planning_ms = top["Planning Time"],
                   shared_hit_blocks = top.Plan["Shared Hit Blocks"], shared_read_blocks = top.Plan["Shared Read Blocks"],
                   node_types = {}, seq_scans = {} }
  for _, n in ipairs(nodes(top.Plan)) do
    report.node_types[#report.node_types + 1] = n.type
    if n.type == "Seq Scan" then
      local rows = ctx.db:scalar("SELECT greatest(reltuples, 0)::float8 FROM pg_class WHERE oid = to_regclass($1)", n.relation)
      report.seq_scans[#report.seq_scans + 1] = { table = n.relation, table_rows = rows, rows_returned = n.rows,
                                                  filter = n.filter, big = rows >= ctx.params.big_table_rows }
    end
  end
  return report
end

-- One step per index of the guide, skipped when the index exists (so its rollback only ever
-- drops an index this run created).
local function index_step(ix)
  return step(ix.name) {
    when = function(ctx)
      if not ctx.params.create_indexes then return "create_indexes is false" end
      return not index_exists(ctx, ix.name) or "it exists"
    end,
    confirm = { "Builds index " .. ix.name .. " CONCURRENTLY (writes go on; it takes time and disk)", on_decline = "skip" },
    timeout = "1h",
    run = function(ctx) ctx.db:exec("CREATE INDEX CONCURRENTLY " .. ix.name .. " " .. ix.definition) end,  -- ours, not input
    verify = function(ctx)
      check(ctx.db:scalar([[SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                            WHERE c.relname = $1 AND i.indisvalid]], ix.name) == 1, "index %s is missing or invalid", ix.name)
    end,
    rollback = function(ctx) ctx.db:exec("DROP INDEX CONCURRENTLY IF EXISTS " .. ix.name) end,
  }
end

runbook "troubleshoot.slow_queries" {
  title = "Slow queries",
  description = "Active queries, unused indexes, the hot queries' plans and timings; adds the guide's missing indexes.",
  tags = { "troubleshoot", "performance", "seed-004" },
  fixture = "slow_queries.sql",
  params = {
    create_indexes = { type = "boolean", default = true, doc = "offer the guide's missing performance indexes (each confirmed)" },
    big_table_rows = { type = "integer", default = 10000, doc = "a sequential scan of a table this big is worth an index" },
  },

  phase "diagnose" {
    step "active queries" {
      run = function(ctx)
        local active = ctx.db:query([[
          SELECT pid, extract(epoch FROM now() - query_start)::float8 AS seconds, query, wait_event_type, wait_event
          FROM pg_stat_activity
          WHERE state = 'active' AND pid <> pg_backend_pid() AND query NOT ILIKE '%pg_stat_activity%'
          ORDER BY query_start]])
        for _, q in ipairs(active) do
          ctx.log(string.format("pid %d %.1fs (%s): %s", q.pid, q.seconds, tostring(q.wait_event), q.query:sub(1, 200)))
        end
        return { active = #active }
      end,
    },
    step "unused indexes" {
      run = function(ctx)
        local unused = ctx.db:query([[
          SELECT s.relname AS table, s.indexrelname AS index, pg_relation_size(s.indexrelid)::float8 AS bytes
          FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
          WHERE s.idx_scan = 0 AND s.schemaname = 'public' AND NOT i.indisunique
          ORDER BY bytes DESC]])
        local since = ctx.db:scalar("SELECT coalesce(stats_reset::text, 'never') FROM pg_stat_database WHERE datname = current_database()")
        for _, u in ipairs(unused) do ctx.log(string.format("unused: %s on %s (%d bytes)", u.index, u.table, u.bytes)) end
        audit.note("unused indexes (no scans since the statistics were last reset)",
                   { count = #unused, indexes = unused, stats_reset = since })
        return { unused = #unused }
      end,
    },
    step "plans of the hot queries" {
      run = function(ctx)
        local report = {}
        for _, q in ipairs(QUERIES) do
          local p = q.arg and ctx.db:explain(q.sql, q.arg) or ctx.db:explain(q.sql)
          ctx.log(q.name .. ":\n" .. p.plan)
          report[q.name] = { seq_scan = p.seq_scan, indexes = p.indexes }
        end
        audit.note("query plans", report)
        return report
      end,
    },
    step "analyzed plans" {
      -- The queries really run (EXPLAIN ANALYZE): they are reads, bounded by LIMIT or a participant.
      run = function(ctx)
        local report = {}
        for _, q in ipairs(QUERIES) do
          local r = analyze(ctx, q)
          ctx.log(string.format("%s: %.2f ms (planning %.2f ms), %s", q.name, r.execution_ms, r.planning_ms,
                                table.concat(r.node_types, " > ")))
          report[q.name] = r
        end
        audit.note("analyzed plans", report)
        return report
      end,
    },
    step "missing indexes" {
      run = function(ctx)
        local by_name, suggestions = {}, {}
        for _, ix in ipairs(INDEXES) do by_name[ix.name] = ix end
        for _, q in ipairs(QUERIES) do
          for _, scan in ipairs(analyze(ctx, q).seq_scans) do
            if scan.big then
              local ix = q.index and by_name[q.index]
              local s = { query = q.name, table = scan.table, table_rows = scan.table_rows, filter = scan.filter }
              if ix and not index_exists(ctx, ix.name) then
                s.index = ix.name
                s.sql = "CREATE INDEX CONCURRENTLY " .. ix.name .. " " .. ix.definition
              else
                s.advice = "no index of the guide covers it: index the columns of its filter or sort"
              end
              ctx.log(string.format("%s reads all of %s (%d rows): %s", q.name, scan.table, scan.table_rows, s.sql or s.advice))
              suggestions[#suggestions + 1] = s
            end
          end
        end
        local tables = ctx.db:query([[
          SELECT relname AS table, seq_scan, seq_tup_read, coalesce(idx_scan, 0) AS idx_scan, n_live_tup
          FROM pg_stat_user_tables
          WHERE schemaname = 'public' AND n_live_tup >= $1 AND seq_scan > coalesce(idx_scan, 0)
          ORDER BY seq_tup_read DESC]], ctx.params.big_table_rows)
        audit.note("missing index suggestions", { count = #suggestions, suggestions = suggestions,
                                                  tables_read_mostly_sequentially = tables })
        return { suggestions = #suggestions }
      end,
    },
  },

  phase "indexes" {
    -- No transaction: CREATE INDEX CONCURRENTLY cannot run inside one.
    index_step(INDEXES[1]),
    index_step(INDEXES[2]),
    index_step(INDEXES[3]),
  },
}
