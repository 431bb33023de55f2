-- Seed 004 (Database Troubleshooting Guide), "Performance Issues - Memory Issues": out-of-memory
-- errors, restarts, high memory use. The database's side of it: the memory settings (work_mem is
-- per sort or hash, per query node, per connection, so max_connections x work_mem is what it may
-- add up to), temporary files written when a sort or hash did not fit in work_mem (per database,
-- pg_stat_database), and which queries wrote the most (pg_stat_statements, when installed; the
-- temporary files of queries running now otherwise). Read-only: the guide's fixes -- pages of
-- rows instead of everything at once, limits on every query -- belong in the application.
local SETTINGS = { "shared_buffers", "work_mem", "maintenance_work_mem", "autovacuum_work_mem", "hash_mem_multiplier",
                   "temp_buffers", "effective_cache_size", "max_connections", "temp_file_limit", "log_temp_files" }

runbook "troubleshoot.memory" {
  title = "Memory pressure",
  description = "Memory settings, temporary files per database and the queries that spill the most. Read-only.",
  tags = { "troubleshoot", "performance", "seed-004" },
  fixture = "memory.sql",
  params = {
    top = { type = "integer", default = 10, doc = "how many queries to show" },
  },

  step "memory settings" {
    run = function(ctx)
      local settings = {}
      for _, row in ipairs(ctx.db:query([[SELECT name, setting, unit, current_setting(name) AS value FROM pg_settings
                                          WHERE name = ANY($1::text[])]], db.array(SETTINGS))) do
        settings[row.name] = row.value
      end
      local bytes = ctx.db:query([[
        SELECT pg_size_bytes(current_setting('shared_buffers'))::float8 AS shared_buffers,
               pg_size_bytes(current_setting('work_mem'))::float8 AS work_mem,
               current_setting('max_connections')::int AS max_connections]])[1]
      local worst = bytes.shared_buffers + bytes.max_connections * bytes.work_mem
      local findings = {}
      findings[#findings + 1] = string.format("%d connections x work_mem %s = %s, plus shared_buffers %s: one sort or hash "
                                              .. "per connection may use that much (a query with several nodes, more)",
                                              bytes.max_connections, settings.work_mem,
                                              ctx.db:scalar("SELECT pg_size_pretty($1::bigint)", bytes.max_connections * bytes.work_mem),
                                              settings.shared_buffers)
      if settings.log_temp_files == "-1" then
        findings[#findings + 1] = "log_temp_files is off: queries that spill to disk are not logged (set it to 0 to log them)"
      end
      for _, f in ipairs(findings) do ctx.log(f) end
      audit.note("memory settings", { settings = settings, worst_case_bytes = worst, findings = findings })
      return { worst_case_bytes = worst }
    end,
  },
  step "temporary files per database" {
    run = function(ctx)
      local dbs = ctx.db:query([[
        SELECT datname AS database, temp_files, temp_bytes::float8 AS temp_bytes, pg_size_pretty(temp_bytes) AS temp_size,
               coalesce(stats_reset::text, 'never') AS stats_reset
        FROM pg_stat_database WHERE datname IS NOT NULL ORDER BY temp_bytes DESC, datname]])
      local this, spilling = nil, {}
      local here = ctx.db:scalar("SELECT current_database()")
      for _, d in ipairs(dbs) do
        if d.database == here then this = d end
        if d.temp_files > 0 then
          spilling[#spilling + 1] = d.database
          ctx.log(string.format("%s: %d temporary files, %s, since %s: sorts or hashes larger than work_mem",
                                d.database, d.temp_files, d.temp_size, d.stats_reset))
        end
      end
      audit.note("temporary files", { databases = dbs, this_database = this, spilling = spilling,
                                      work_mem = ctx.db:scalar("SELECT current_setting('work_mem')") })
      return { spilling = #spilling }
    end,
  },
  step "queries writing temporary files" {
    run = function(ctx)
      local source, queries
      if ctx.db:scalar("SELECT to_regclass('pg_stat_statements') IS NOT NULL") then
        source = "pg_stat_statements"
        queries = ctx.db:query([[
          SELECT left(query, 300) AS query, calls, temp_blks_written,
                 (temp_blks_written * current_setting('block_size')::bigint)::float8 AS temp_bytes
          FROM pg_stat_statements WHERE temp_blks_written > 0 ORDER BY temp_blks_written DESC LIMIT $1]], ctx.params.top)
      else
        -- Without pg_stat_statements only what runs now is visible: its temporary files
        -- (pg_ls_tmpdir needs pg_monitor or superuser).
        local ok, rows = pcall(ctx.db.query, ctx.db, [[
          SELECT a.pid, left(a.query, 300) AS query, sum(t.size)::float8 AS temp_bytes
          FROM pg_ls_tmpdir() t
          JOIN pg_stat_activity a ON t.name LIKE 'pgsql_tmp' || a.pid || '.%'
          GROUP BY a.pid, a.query ORDER BY 3 DESC LIMIT $1]], ctx.params.top)
        source = ok and "pg_ls_tmpdir (running queries only; install pg_stat_statements for history)"
                 or "not visible (no pg_stat_statements, and pg_ls_tmpdir is not allowed)"
        queries = ok and rows or {}
      end
      for _, q in ipairs(queries) do ctx.log(string.format("%.0f bytes: %s", q.temp_bytes, q.query)) end
      audit.note("queries writing temporary files", { source = source, count = #queries, queries = queries })
      return { queries = #queries }
    end,
  },
}
