-- Seed 004 (Database Troubleshooting Guide), "Connection Issues - Connection Pool Issues":
-- intermittent "connection pool timeout" errors, hangs on database calls. Shows the pool's
-- usage (the guide's sessions by state with their longest time in it, then by application,
-- client and user, against max_connections), long-running queries, and sessions idle in a
-- transaction for longer than `idle_in_transaction`: they hold a pooled connection and their
-- locks while doing nothing. The fix terminates those (their open transactions are rolled back,
-- their clients reconnect); what each was doing is audited first, as a session cannot be backed
-- up. Declined, the run still ends with its report.
local IDLE_IN_TRANSACTION = [[
  SELECT pid, usename, application_name, client_addr::text AS client_addr, state,
         extract(epoch FROM now() - xact_start)::float8 AS transaction_seconds,
         extract(epoch FROM now() - state_change)::float8 AS idle_seconds,
         (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND l.granted) AS locks_held, left(query, 300) AS last_query
  FROM pg_stat_activity a
  WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
    AND coalesce(application_name, '') NOT LIKE 'runbook%'
    AND state IN ('idle in transaction', 'idle in transaction (aborted)')
    AND now() - state_change > make_interval(secs => $1)
  ORDER BY xact_start]]

local function idle_in_transaction(ctx) return ctx.db:query(IDLE_IN_TRANSACTION, ctx.params.idle_in_transaction) end

runbook "troubleshoot.pool" {
  title = "Connection pool exhausted or timing out",
  description = "Pool usage by state, application and client; long queries; terminates sessions idle in a transaction.",
  tags = { "troubleshoot", "connections", "seed-004" },
  fixture = "leaps.sql",
  params = {
    idle_in_transaction = { type = "duration", default = "5m", doc = "sessions idle in a transaction longer than this are terminated" },
    long_running = { type = "duration", default = "1m", doc = "report active queries running longer than this" },
  },

  phase "diagnose" {
    step "pool usage" {
      run = function(ctx)
        -- The guide's "monitor connection pool usage", then who holds the connections.
        local by_state = ctx.db:query([[
          SELECT coalesce(state, 'unknown') AS state, count(*) AS connections,
                 coalesce(max(extract(epoch FROM now() - state_change)), 0)::float8 AS max_seconds_in_state
          FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'
          GROUP BY 1 ORDER BY 2 DESC, 1]])
        local by_client = ctx.db:query([[
          SELECT coalesce(nullif(application_name, ''), '(none)') AS application, coalesce(client_addr::text, 'local') AS client,
                 usename AS "user", datname AS database, count(*) AS connections,
                 count(*) FILTER (WHERE state = 'active') AS active, count(*) FILTER (WHERE state = 'idle') AS idle,
                 count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction
          FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'
          GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC, 1]])
        local limits = ctx.db:query([[
          SELECT current_setting('max_connections')::int AS max_connections,
                 current_setting('superuser_reserved_connections')::int AS reserved,
                 (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS in_use,
                 current_setting('idle_in_transaction_session_timeout') AS idle_in_transaction_session_timeout]])[1]
        for _, s in ipairs(by_state) do
          ctx.log(string.format("%-30s %4d connections, longest in this state %.0fs", s.state, s.connections, s.max_seconds_in_state))
        end
        for _, c in ipairs(by_client) do
          ctx.log(string.format("%s from %s as %s on %s: %d (%d active, %d idle, %d idle in transaction)", c.application,
                                c.client, c.user, c.database, c.connections, c.active, c.idle, c.idle_in_transaction))
        end
        local findings = {}
        if limits.in_use >= 0.9 * (limits.max_connections - limits.reserved) then
          findings[#findings + 1] = string.format("%d of %d connections in use (%d reserved for superusers)", limits.in_use,
                                                  limits.max_connections, limits.reserved)
        end
        if limits.idle_in_transaction_session_timeout == "0" then
          findings[#findings + 1] = "idle_in_transaction_session_timeout is 0: a forgotten transaction holds its connection forever"
        end
        for _, f in ipairs(findings) do ctx.log(f) end
        audit.note("pool usage", { by_state = by_state, by_client = by_client, limits = limits, findings = findings })
        return { in_use = limits.in_use, max_connections = limits.max_connections }
      end,
    },
    step "long-running queries" {
      run = function(ctx)
        -- The guide's "check for long-running queries".
        local slow = ctx.db:query([[
          SELECT pid, usename, application_name, extract(epoch FROM now() - query_start)::float8 AS seconds, left(query, 300) AS query
          FROM pg_stat_activity
          WHERE state = 'active' AND pid <> pg_backend_pid() AND now() - query_start > make_interval(secs => $1)
          ORDER BY query_start]], ctx.params.long_running)
        for _, q in ipairs(slow) do ctx.log(string.format("pid %d running %.0fs: %s", q.pid, q.seconds, q.query)) end
        audit.note("long-running queries", { count = #slow, queries = slow, longer_than_seconds = ctx.params.long_running })
        return { long_running = #slow }
      end,
    },
    step "idle in transaction" {
      run = function(ctx)
        local idle = idle_in_transaction(ctx)
        for _, s in ipairs(idle) do
          ctx.log(string.format("pid %d (%s from %s) idle in a transaction for %.0fs, %d locks held; last: %s", s.pid,
                                tostring(s.application_name), tostring(s.client_addr), s.idle_seconds, s.locks_held, s.last_query))
        end
        audit.note("idle in transaction sessions", { count = #idle, sessions = idle,
                                                     longer_than_seconds = ctx.params.idle_in_transaction })
        return { idle_in_transaction = #idle }
      end,
    },
  },

  phase "fix" {
    step "terminate sessions idle in a transaction" {
      when = function(ctx) return #idle_in_transaction(ctx) > 0 or "no session idle in a transaction that long" end,
      confirm = { "Terminates this database's sessions idle in a transaction longer than idle_in_transaction "
                  .. "(their transactions are rolled back)",
                  on_decline = "skip" },
      run = function(ctx)
        local idle = idle_in_transaction(ctx)
        audit.note("terminating sessions", { sessions = idle })  -- what they were doing, before they are gone
        local terminated = {}
        for _, s in ipairs(idle) do
          -- pg_terminate_backend waits (up to 5 s) until the session is gone
          if ctx.db:scalar("SELECT pg_terminate_backend($1, 5000)", s.pid) then terminated[#terminated + 1] = s.pid end
        end
        audit.note("idle in transaction sessions terminated", { count = #terminated, pids = terminated })
        return { terminated = #terminated }
      end,
      verify = function(ctx)
        local left = #idle_in_transaction(ctx)
        check(left == 0, "%d sessions are still idle in a transaction", left)
      end,
    },
  },
}
