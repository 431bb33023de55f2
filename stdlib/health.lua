-- Health checks from the troubleshooting and monitoring guides, over any db connection.
--   local health = require "health"
--   check(health.orphans(ctx.db, "conversations", "user_id", "users") == 0, "orphaned conversations")
local health = {}

-- Identifiers are quoted by the server (quote_ident), never spliced raw.
local function ident(db, name)
  local parts = {}
  for part in tostring(name):gmatch("[^%.]+") do
    parts[#parts + 1] = db:scalar("SELECT quote_ident($1)", part)
  end
  return table.concat(parts, ".")
end

--- True when the table (or view) exists.
function health.table_exists(db, name)
  return db:scalar("SELECT to_regclass($1) IS NOT NULL", name)
end

--- True when the table has the column.
function health.column_exists(db, tbl, column)
  return db:scalar([[SELECT count(*) > 0 FROM information_schema.columns
                      WHERE table_name = $1 AND column_name = $2]], tbl, column)
end

--- True when an index of that name exists.
function health.index_exists(db, name)
  return db:scalar("SELECT count(*) > 0 FROM pg_indexes WHERE indexname = $1", name)
end

--- Rows in a table.
function health.count(db, tbl)
  return db:scalar("SELECT count(*) FROM " .. ident(db, tbl))
end

--- Rows of `child` whose `fk` points at no row of `parent` (by `pk`, default "id").
function health.orphans(db, child, fk, parent, pk)
  return db:scalar(string.format(
    "SELECT count(*) FROM %s c LEFT JOIN %s p ON c.%s = p.%s WHERE c.%s IS NOT NULL AND p.%s IS NULL",
    ident(db, child), ident(db, parent), ident(db, fk), ident(db, pk or "id"), ident(db, fk), ident(db, pk or "id")))
end

--- Groups of rows sharing the same values in `columns` (a list): 0 when they are unique.
function health.duplicates(db, tbl, columns)
  local cols = {}
  for i, c in ipairs(columns) do cols[i] = ident(db, c) end
  local list = table.concat(cols, ", ")
  return db:scalar(string.format("SELECT count(*) FROM (SELECT %s FROM %s GROUP BY %s HAVING count(*) > 1) d",
                                 list, ident(db, tbl), list))
end

--- Client connections by state (background workers are not counted): { {state = "active", connections = 3, max_idle_seconds = 0}, ... }
function health.connections(db)
  return db:query([[SELECT coalesce(state, 'unknown') AS state, count(*) AS connections,
                           coalesce(max(extract(epoch FROM now() - state_change)), 0)::float8 AS max_idle_seconds
                    FROM pg_stat_activity
                    WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'
                    GROUP BY state ORDER BY state]])
end

--- Queries running longer than `seconds`.
function health.long_running(db, seconds)
  return db:query([[SELECT pid, usename, extract(epoch FROM now() - query_start)::float8 AS seconds, state, query
                    FROM pg_stat_activity
                    WHERE state = 'active' AND pid <> pg_backend_pid()
                      AND now() - query_start > make_interval(secs => $1)
                    ORDER BY query_start]], seconds)
end

--- Sessions waiting on a lock, with the session blocking them.
function health.blocking_locks(db)
  return db:query([[SELECT blocked.pid AS blocked_pid, blocked.usename AS blocked_user,
                           blocking.pid AS blocking_pid, blocking.usename AS blocking_user,
                           blocked.query AS blocked_statement, blocking.query AS blocking_statement
                    FROM pg_stat_activity blocked
                    JOIN LATERAL unnest(pg_blocking_pids(blocked.pid)) AS b(pid) ON true
                    JOIN pg_stat_activity blocking ON blocking.pid = b.pid]])
end

--- Size of the table, its indexes and its total, in bytes.
function health.table_size(db, tbl)
  return db:query([[SELECT pg_total_relation_size($1::regclass)::float8 AS total,
                           pg_relation_size($1::regclass)::float8 AS heap,
                           (pg_total_relation_size($1::regclass) - pg_relation_size($1::regclass))::float8 AS indexes]], tbl)[1]
end

--- Runs a query under EXPLAIN (ANALYZE, FORMAT JSON) -- it really runs, so use it on SELECTs --
--- and returns what a performance check looks at: { ms = execution time, planning_ms,
--- indexes = { the indexes it scans, in plan order }, nodes = { node types, in plan order },
--- seq_scans = { tables it reads whole }, plan = the decoded plan (its root node) }.
---   local e = health.explain(ctx.db, "SELECT * FROM messages WHERE conversation_id = $1", id)
---   check(health.uses_index(e, "idx_messages_conversation_created"), "no index scan")
function health.explain(db, sql, ...)
  local top = db:scalar("EXPLAIN (ANALYZE, FORMAT JSON) " .. sql, ...)[1]
  local r = { ms = top["Execution Time"], planning_ms = top["Planning Time"], indexes = {}, nodes = {},
              seq_scans = {}, plan = top.Plan }
  local function walk(node)
    r.nodes[#r.nodes + 1] = node["Node Type"]
    if node["Index Name"] then r.indexes[#r.indexes + 1] = node["Index Name"] end
    if node["Node Type"] == "Seq Scan" then r.seq_scans[#r.seq_scans + 1] = node["Relation Name"] end
    for _, child in ipairs(node.Plans or {}) do walk(child) end
  end
  walk(top.Plan)
  return r
end

--- True when an explain result (health.explain) scans the index `name`.
function health.uses_index(e, name)
  for _, i in ipairs(e.indexes) do
    if i == name then return true end
  end
  return false
end

return health
