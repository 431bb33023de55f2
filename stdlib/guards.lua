-- Guards: conditions a runbook checks before it runs; a guard that says no skips the run.
--   local guards = require "guards"
--   runbook "maintenance.weekly" {
--     guard = { guards.no_long_transactions("5m"), guards.replication_lag_below("30s") },
--     ...
--   }
-- A guard is function(ctx) returning ok, reason. Durations are PostgreSQL intervals ("5m",
-- "30s", "1h"); every check runs on the run's target.
local guards = {}

--- No client transaction in this database has been open longer than `limit` (VACUUM and
--- DDL would wait on it, or it would hold back what VACUUM can clean here).
function guards.no_long_transactions(limit)
  return function(ctx)
    local r = ctx.db:query([[
      select count(*)::int as n,
             coalesce(max(extract(epoch from now() - xact_start)), 0)::float8 as oldest
        from pg_stat_activity
       where xact_start < now() - $1::interval
         and pid <> pg_backend_pid()
         and datname = current_database()
         and backend_type = 'client backend']], limit)[1]
    if r.n > 0 then
      return false, string.format("%d transaction(s) open longer than %s (the oldest for %.0fs)", r.n, limit, r.oldest)
    end
    return true
  end
end

--- Replication lag is under `limit`: on a primary, the largest replay lag of its replicas
--- (pg_stat_replication); on a replica, how far its replay is behind. No replicas: true.
function guards.replication_lag_below(limit)
  return function(ctx)
    local r = ctx.db:query([[
      select pg_is_in_recovery() as replica,
             case when pg_is_in_recovery()
                  then extract(epoch from now() - pg_last_xact_replay_timestamp())
                  else (select max(extract(epoch from replay_lag)) from pg_stat_replication)
             end::float8 as lag,
             extract(epoch from $1::interval)::float8 as limit_s]], limit)[1]
    if type(r.lag) ~= "number" then return true end  -- NULL: no replicas, or nothing replayed yet
    if r.lag >= r.limit_s then
      return false, string.format("replication lag is %.1fs, not below %s (%s)", r.lag, limit,
        r.replica and "this server is a replica" or "worst replica")
    end
    return true
  end
end

--- No session of this database is waiting for a lock right now.
function guards.no_blocking_locks()
  return function(ctx)
    local n = ctx.db:scalar([[
      select count(*)::int
        from pg_locks l join pg_stat_activity a using (pid)
       where not l.granted and a.datname = current_database()]])
    if n > 0 then return false, string.format("%d lock request(s) are waiting", n) end
    return true
  end
end

--- Every user table's dead-tuple ratio (dead / (live + dead), from pg_stat_user_tables) is
--- below `ratio` (0.2 = 20%).
function guards.bloat_below(ratio)
  return function(ctx)
    local r = ctx.db:query([[
      select schemaname || '.' || relname as name,
             (n_dead_tup::float8 / nullif(n_live_tup + n_dead_tup, 0))::float8 as ratio
        from pg_stat_user_tables
       order by 2 desc nulls last
       limit 1]])[1]
    if r and r.ratio and r.ratio >= ratio then
      return false, string.format("table %s is %.0f%% dead tuples, not below %.0f%%", r.name, r.ratio * 100, ratio * 100)
    end
    return true
  end
end

--- The time of day in `tz` (a tz database name, default UTC) is within [start, finish):
--- a maintenance window such as between("01:00", "05:00", "Europe/Berlin"). A window that
--- crosses midnight ("22:00" to "02:00") works too. The server's clock and zone data decide.
function guards.between(start, finish, tz)
  tz = tz or "UTC"
  return function(ctx)
    local r = ctx.db:query([[
      select to_char(now() at time zone $3, 'HH24:MI') as now_local,
             case when $1::time <= $2::time
                  then (now() at time zone $3)::time >= $1::time and (now() at time zone $3)::time < $2::time
                  else (now() at time zone $3)::time >= $1::time or (now() at time zone $3)::time < $2::time
             end as inside]], start, finish, tz)[1]
    if not r.inside then
      return false, string.format("outside the maintenance window %s-%s %s (it is %s there)", start, finish, tz, r.now_local)
    end
    return true
  end
end

--- A maintenance window written as one string, "02:00-04:00" (crossing midnight works too), in
--- `tz` (default UTC); "any" lets the run go at any time. Either may be a function(ctx)
--- returning the window (and the zone), so params can decide:
---   guard = guards.maintenance_window(function(ctx) return ctx.params.window, ctx.params.tz end)
function guards.maintenance_window(window, tz)
  return function(ctx)
    local w, z = window, tz
    if type(window) == "function" then w, z = window(ctx) end
    z = z or "UTC"
    if w == "any" then return true end
    local start, finish = tostring(w):match("^%s*(%d%d?:%d%d)%s*%-%s*(%d%d?:%d%d)%s*$")
    if not start then
      error(string.format("maintenance window '%s' is not HH:MM-HH:MM or 'any'", tostring(w)), 0)
    end
    return guards.between(start, finish, z)(ctx)
  end
end

return guards
