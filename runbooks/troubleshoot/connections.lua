-- Seed 004 (Database Troubleshooting Guide), "Connection Issues": connection pool exhaustion
-- and connection pool issues. Shows connections by state, long-running queries and sessions
-- blocked by locks, then terminates sessions idle for longer than `idle_for` (the guide's
-- "Kill idle connections"). Terminated sessions cannot be brought back (their clients
-- reconnect), so that step has no rollback and asks for confirmation.
local health = require "health"

runbook "troubleshoot.connections" {
  title = "Connection pool exhausted or timing out",
  description = "Connections by state, long-running queries, lock waits; terminates long-idle sessions.",
  tags = { "troubleshoot", "connections", "seed-004" },
  fixture = "leaps.sql",
  params = {
    long_running = { type = "duration", default = "1m", doc = "report active queries running longer than this" },
    idle_for = { type = "duration", default = "10m", doc = "terminate sessions of this database idle longer than this" },
  },

  step "connections by state" {
    -- Client sessions only (health.connections also counts the server's background workers).
    run = function(ctx)
      local states = ctx.db:query([[
        SELECT coalesce(state, 'unknown') AS state, count(*) AS connections,
               coalesce(max(extract(epoch FROM now() - state_change)), 0)::float8 AS max_seconds_in_state
        FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
        GROUP BY 1 ORDER BY 2 DESC]])
      local total = 1  -- this session
      for _, s in ipairs(states) do
        total = total + s.connections
        ctx.log(string.format("%-30s %4d connections, longest in this state %.0fs", s.state, s.connections, s.max_seconds_in_state))
      end
      local max = ctx.db:scalar("SELECT current_setting('max_connections')::int")
      audit.note("connections", { states = states, total = total, max_connections = max })
      if total >= max * 0.9 then ctx.log(string.format("WARN %d of %d connections in use", total, max)) end
      return { total = total, max_connections = max }
    end,
  },
  step "long-running queries" {
    run = function(ctx)
      local slow = health.long_running(ctx.db, ctx.params.long_running)
      for _, q in ipairs(slow) do
        ctx.log(string.format("pid %d (%s) running %.0fs: %s", q.pid, tostring(q.usename), q.seconds, q.query:sub(1, 200)))
      end
      audit.note("long-running queries", { count = #slow, longer_than_seconds = ctx.params.long_running })
      return { long_running = #slow }
    end,
  },
  step "sessions waiting on locks" {
    run = function(ctx)
      local blocked = health.blocking_locks(ctx.db)
      for _, b in ipairs(blocked) do
        ctx.log(string.format("pid %d waits for pid %d: %s", b.blocked_pid, b.blocking_pid, b.blocking_statement:sub(1, 200)))
      end
      audit.note("blocked sessions", { count = #blocked })
      return { blocked = #blocked }
    end,
  },
  step "terminate idle connections" {
    confirm = "Terminates every session of this database idle for longer than idle_for",
    -- Never another runbook's session: it may hold that run's lock.
    run = function(ctx)
      local killed = ctx.db:query([[
        SELECT pid, usename, application_name, pg_terminate_backend(pid) AS terminated
        FROM pg_stat_activity
        WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
          AND application_name NOT LIKE 'runbook%'
          AND state = 'idle' AND now() - state_change > make_interval(secs => $1)]], ctx.params.idle_for)
      audit.note("idle connections terminated", { count = #killed, sessions = killed })
      return { terminated = #killed }
    end,
  },
}
