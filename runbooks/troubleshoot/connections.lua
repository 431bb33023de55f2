-- Seed 004 (Database Troubleshooting Guide), "Connection Issues - Cannot Connect to Database":
-- connection errors, timeouts, failing health checks. What the server can say about why a client
-- is turned away: where it listens and its version (the guide's `SELECT version()` and
-- `current_database()`), SSL (on or off, the certificate settings, which sessions use it, and
-- hostssl rules that can never match), authentication (pg_hba.conf's rules as the server reads
-- them: rules that reject, lines in error, and for `role` the first rule for each kind of
-- connection, the role's login, expiry and CONNECT privilege) and the connection limits
-- (max_connections against use and the superuser reserve, roles and databases at their
-- CONNECTION LIMIT). Then the guide's "Connection Pool Exhaustion": connections by state,
-- long-running queries and sessions blocked by locks, and, asked first, terminating sessions
-- idle for longer than `idle_for` ("Kill idle connections"; troubleshoot.pool handles sessions
-- idle in a transaction). Terminated sessions cannot be brought back (their clients reconnect),
-- so what they were doing is audited first and that step has no rollback.
local health = require "health"

runbook "troubleshoot.connections" {
  title = "Cannot connect, or the connections run out",
  description = "Connectivity, SSL, pg_hba rules, connection limits; connections by state, long queries, lock waits; "
             .. "terminates long-idle sessions.",
  tags = { "troubleshoot", "connections", "seed-004" },
  fixture = "leaps.sql",
  params = {
    role = { type = "string", default = "", doc = "the role that cannot connect (its rules, login, limits, privileges)" },
    long_running = { type = "duration", default = "1m", doc = "report active queries running longer than this" },
    idle_for = { type = "duration", default = "10m", doc = "terminate sessions of this database idle longer than this" },
  },

  phase "cannot connect" {
    step "connectivity" {
      run = function(ctx)
        local server = ctx.db:query([[
          SELECT version() AS version, current_database() AS database, current_user AS "user",
                 coalesce(host(inet_server_addr()), 'unix socket') AS server_address, current_setting('port') AS port,
                 current_setting('listen_addresses') AS listen_addresses,
                 current_setting('unix_socket_directories') AS unix_socket_directories,
                 pg_postmaster_start_time()::text AS started_at, pg_is_in_recovery() AS in_recovery]])[1]
        local findings = {}
        if server.listen_addresses == "" then
          findings[#findings + 1] = "listen_addresses is empty: the server takes no TCP connections, only its Unix socket"
        elseif server.listen_addresses == "localhost" or server.listen_addresses == "127.0.0.1" then
          findings[#findings + 1] = "listen_addresses is " .. server.listen_addresses .. ": clients on other hosts cannot connect"
        end
        if server.in_recovery then findings[#findings + 1] = "the server is a standby: it refuses writes" end
        for _, f in ipairs(findings) do ctx.log(f) end
        ctx.log(string.format("connected to %s as %s at %s port %s: %s", server.database, server.user, server.server_address,
                              server.port, server.version))
        audit.note("connectivity", { server = server, findings = findings })
        return { port = server.port }
      end,
    },
    step "ssl" {
      run = function(ctx)
        local settings = {}
        for _, row in ipairs(ctx.db:query("SELECT name, setting FROM pg_settings WHERE name LIKE 'ssl%' ORDER BY name")) do
          settings[row.name] = row.setting
        end
        local sessions = ctx.db:query([[SELECT s.ssl, coalesce(s.version, '') AS version, count(*) AS connections
                                        FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid
                                        WHERE a.backend_type = 'client backend' GROUP BY 1, 2 ORDER BY 1, 2]])
        local this = ctx.db:query("SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[1]
        local ok, hostssl = pcall(ctx.db.scalar, ctx.db, "SELECT count(*) FROM pg_hba_file_rules WHERE type = 'hostssl'")
        local findings = {}
        if settings.ssl ~= "on" then
          findings[#findings + 1] = "ssl is off: clients connecting with sslmode=require or verify-* are refused"
          if ok and hostssl > 0 then
            findings[#findings + 1] = string.format("pg_hba.conf has %d hostssl rules, which never match while ssl is off", hostssl)
          end
        else
          findings[#findings + 1] = "ssl is on: certificate " .. tostring(settings.ssl_cert_file) .. ", key "
                                    .. tostring(settings.ssl_key_file) .. ", minimum protocol " .. tostring(settings.ssl_min_protocol_version)
          if (settings.ssl_ca_file or "") == "" then
            findings[#findings + 1] = "no ssl_ca_file: client certificates (clientcert, cert authentication) cannot be checked"
          end
        end
        for _, f in ipairs(findings) do ctx.log(f) end
        audit.note("ssl", { settings = settings, sessions = sessions, this_session = this,
                            hostssl_rules = ok and hostssl or "not visible", findings = findings })
        return { ssl = settings.ssl }
      end,
    },
    step "authentication rules" {
      run = function(ctx)
        -- pg_hba_file_rules is pg_hba.conf as the server would read it now (superusers only).
        local ok, rules = pcall(ctx.db.query, ctx.db, [[
          SELECT line_number, type, array_to_string(database, ',') AS database, array_to_string(user_name, ',') AS user_name,
                 coalesce(address, '') AS address, auth_method, error
          FROM pg_hba_file_rules ORDER BY line_number]])
        if not ok then
          audit.note("authentication rules", { visible = false, reason = type(rules) == "table" and rules.message or tostring(rules) })
          return { visible = false }
        end
        local rejecting, errors, findings = {}, {}, {}
        for _, r in ipairs(rules) do
          if r.error ~= db.null then
            errors[#errors + 1] = r
            findings[#findings + 1] = string.format("pg_hba.conf line %d is in error (%s): the server will not load the file "
                                                    .. "as it is on its next reload", r.line_number, r.error)
          elseif r.auth_method == "reject" then
            rejecting[#rejecting + 1] = r
          end
        end
        local role = ctx.params.role
        local role_info, first = nil, {}
        if role ~= "" then
          role_info = ctx.db:query([[
            SELECT rolname AS role, rolcanlogin AS can_login, rolvaliduntil::text AS valid_until,
                   coalesce(rolvaliduntil < now(), false) AS expired, rolconnlimit AS connection_limit,
                   has_database_privilege(rolname, current_database(), 'CONNECT') AS can_connect_here
            FROM pg_roles WHERE rolname = $1]], role)[1]
          if not role_info then
            findings[#findings + 1] = "role " .. role .. " does not exist"
          else
            if not role_info.can_login then findings[#findings + 1] = "role " .. role .. " cannot log in (NOLOGIN)" end
            if role_info.expired then findings[#findings + 1] = "role " .. role .. ": password expired " .. role_info.valid_until end
            if not role_info.can_connect_here then
              findings[#findings + 1] = "role " .. role .. " has no CONNECT privilege on this database"
            end
          end
          -- The first rule that matches the role (by name, all, or +group) for each connection type.
          local here = ctx.db:scalar("SELECT current_database()")
          for _, r in ipairs(rules) do
            if r.error == db.null and not first[r.type] then
              local users, dbs = "," .. r.user_name .. ",", "," .. r.database .. ","
              local user_matches = users:find("," .. role .. ",", 1, true) or users:find(",all,", 1, true)
                                   or ctx.db:scalar([[SELECT bool_or(pg_has_role($1, substr(u, 2), 'member'))
                                                     FROM unnest(string_to_array($2, ',')) u WHERE u LIKE '+%']], role, r.user_name)
              local db_matches = dbs:find("," .. here .. ",", 1, true) or dbs:find(",all,", 1, true)
                                 or ((dbs:find(",sameuser,", 1, true) or dbs:find(",samerole,", 1, true)) and here == role)
              if user_matches and db_matches then
                first[r.type] = r
                if r.auth_method == "reject" then
                  findings[#findings + 1] = string.format("role %s: %s connections to %s are rejected by pg_hba.conf line %d",
                                                          role, r.type, here, r.line_number)
                end
              end
            end
          end
        end
        for _, f in ipairs(findings) do ctx.log(f) end
        audit.note("authentication rules", { visible = true, rules = #rules, rejecting = rejecting, errors = errors,
                                             role = role_info, first_rule_for_role = first, findings = findings })
        return { rejecting = #rejecting, errors = #errors }
      end,
    },
    step "connection limits" {
      run = function(ctx)
        local limits = ctx.db:query([[
          SELECT current_setting('max_connections')::int AS max_connections,
                 current_setting('superuser_reserved_connections')::int AS superuser_reserved,
                 coalesce(current_setting('reserved_connections', true), '0')::int AS reserved,
                 (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS in_use]])[1]
        limits.available = limits.max_connections - limits.superuser_reserved - limits.reserved - limits.in_use
        local roles = ctx.db:query([[
          SELECT r.rolname AS role, r.rolconnlimit AS "limit", count(a.pid) AS connections
          FROM pg_roles r LEFT JOIN pg_stat_activity a ON a.usesysid = r.oid AND a.backend_type = 'client backend'
          WHERE r.rolconnlimit >= 0 GROUP BY r.rolname, r.rolconnlimit ORDER BY 1]])
        local databases = ctx.db:query([[
          SELECT d.datname AS database, d.datconnlimit AS "limit", d.datallowconn AS allow_connections, count(a.pid) AS connections
          FROM pg_database d LEFT JOIN pg_stat_activity a ON a.datid = d.oid AND a.backend_type = 'client backend'
          WHERE (d.datconnlimit >= 0 OR NOT d.datallowconn) AND NOT d.datistemplate
          GROUP BY d.datname, d.datconnlimit, d.datallowconn ORDER BY 1]])
        local findings, roles_at_limit, databases_at_limit = {}, {}, {}
        if limits.available <= 0 then
          findings[#findings + 1] = string.format("all %d connections are in use (%d kept for superusers): new clients get "
                                                  .. '"too many clients already"', limits.max_connections, limits.superuser_reserved)
        end
        for _, r in ipairs(roles) do
          if r.connections >= r.limit then
            roles_at_limit[#roles_at_limit + 1] = r.role
            findings[#findings + 1] = string.format("role %s: %d of %d connections in use (CONNECTION LIMIT reached)", r.role,
                                                    r.connections, r.limit)
          end
        end
        for _, d in ipairs(databases) do
          if not d.allow_connections then
            findings[#findings + 1] = "database " .. d.database .. " does not allow connections (datallowconn = false)"
          elseif d.connections >= d.limit then
            databases_at_limit[#databases_at_limit + 1] = d.database
            findings[#findings + 1] = string.format("database %s: %d of %d connections in use (CONNECTION LIMIT reached)",
                                                    d.database, d.connections, d.limit)
          end
        end
        for _, f in ipairs(findings) do ctx.log(f) end
        audit.note("connection limits", { limits = limits, roles = roles, databases = databases, roles_at_limit = roles_at_limit,
                                          databases_at_limit = databases_at_limit, findings = findings })
        return { available = limits.available }
      end,
    },
  },

  phase "pool" {
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
  },

  phase "fix" {
    step "terminate idle connections" {
      confirm = { "Terminates every session of this database idle for longer than idle_for", on_decline = "skip" },
      -- Never another runbook's session: it may hold that run's lock.
      run = function(ctx)
        audit.note("terminating sessions", { sessions = ctx.db:query([[
          SELECT pid, usename, application_name, client_addr::text AS client_addr, left(query, 300) AS last_query,
                 extract(epoch FROM now() - state_change)::float8 AS idle_seconds
          FROM pg_stat_activity
          WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
            AND application_name NOT LIKE 'runbook%'
            AND state = 'idle' AND now() - state_change > make_interval(secs => $1)]], ctx.params.idle_for) })
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
  },
}
