-- Seed 004 (Database Troubleshooting Guide), "Performance Issues - Slow Queries": what is
-- running now, which indexes are never used, and how the tracker's hot queries are planned
-- (the leaderboard, a participant's submissions and points, the review queue). Only these
-- fixed queries are explained: a runbook never runs SQL handed to it as a parameter. With
-- create_indexes=true it adds the guide's "common performance indexes", CONCURRENTLY.
local QUERIES = {
  { name = "leaderboard", sql = "SELECT * FROM leaderboard_totals ORDER BY total_points DESC LIMIT 20" },
  { name = "participant submissions",
    sql = "SELECT * FROM submissions WHERE user_id = $1 AND activity_code = 'LEARN' AND status = 'APPROVED'", arg = "user_01" },
  { name = "participant points",
    sql = "SELECT * FROM points_ledger WHERE user_id = $1 ORDER BY created_at DESC LIMIT 20", arg = "user_01" },
  { name = "review queue",
    sql = "SELECT * FROM submissions WHERE status = 'PENDING' ORDER BY created_at LIMIT 50" },
}
-- One step per index of the guide, skipped when the index exists (so its rollback only ever
-- drops an index this run created).
local function index_step(name, definition)
  return step(name) {
    when = function(ctx)
      if not ctx.params.create_indexes then return "create_indexes is false" end
      return not ctx.db:scalar("SELECT to_regclass($1) IS NOT NULL", name) or "it exists"
    end,
    timeout = "1h",
    run = function(ctx) ctx.db:exec("CREATE INDEX CONCURRENTLY " .. name .. " " .. definition) end,  -- ours, not input
    verify = function(ctx)
      check(ctx.db:scalar([[SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                            WHERE c.relname = $1 AND i.indisvalid]], name) == 1, "index %s is missing or invalid", name)
    end,
    rollback = function(ctx) ctx.db:exec("DROP INDEX CONCURRENTLY IF EXISTS " .. name) end,
  }
end

runbook "troubleshoot.slow_queries" {
  title = "Slow queries",
  description = "Active queries, unused indexes and the plans of the tracker's hot queries; optionally adds indexes.",
  tags = { "troubleshoot", "performance", "seed-004" },
  fixture = "leaps.sql",
  params = {
    create_indexes = { type = "boolean", default = false, doc = "add the guide's performance indexes (CONCURRENTLY)" },
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
  },

  phase "indexes" {
    -- No transaction: CREATE INDEX CONCURRENTLY cannot run inside one.
    index_step("idx_submissions_user_activity", "ON submissions (user_id, activity_code, status)"),
    index_step("idx_points_ledger_user_created", "ON points_ledger (user_id, created_at DESC)"),
    index_step("idx_submissions_created_status", "ON submissions (created_at, status) WHERE status = 'PENDING'"),
  },
}
