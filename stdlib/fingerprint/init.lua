-- Fingerprints of a database's schema and data, to prove that a rollback restores it exactly.
-- (fingerprint.catalog reads the catalogs, fingerprint.diff says what differs.)
--
--   local fingerprint = require "fingerprint"
--
--   local before = fingerprint.take(ctx.db)                       -- every schema, with data
--   local other  = fingerprint.take(ctx.db, { schemas = { "public", "audit" }, data = false })
--   ... migrate, then roll back ...
--   local after = fingerprint.take(ctx.db)
--   if not fingerprint.equal(before, after) then
--     for _, line in ipairs(fingerprint.diff(before, after)) do ctx.log(line) end
--   end
--
-- fingerprint.take(db, opts) reads the catalogs (and, with data, every table) over `db` (ctx.db
-- or a db.connect() connection) and returns a plain Lua table:
--
--   { version = 2, data = true, schemas = { public = {
--       tables      = { users = { kind, persistence, row_security, force_row_security, options,
--                                 partition_key, partition_bound, parents,
--                                 columns = { { name, type, not_null, default, identity,
--                                               generated, collation }, ... },   -- in column order
--                                 rows, hash } },                                -- with data only
--       constraints = { users = { users_pkey = { type, definition } } },
--       indexes     = { users_pkey = { table, definition, valid } },
--       policies    = { users = { tenant_select = { command, permissive, roles, qual, with_check } } },
--       functions   = { ["touch(integer)"] = { kind, hash } },   -- hash: md5 of pg_get_functiondef
--       triggers    = { users = { touch_users = { definition, enabled } } },
--       rules       = { users = { users_log = { definition, enabled } } },
--       views       = { v = { definition, options } },
--       matviews    = { m = { definition, options, populated } },
--       sequences   = { users_id_seq = { type, increment, min, max, start, cache, cycle,
--                                        owned_by = { "public", "users", "id" },
--                                        last_value } },             -- last_value with data only
--       enums       = { mood = { labels = { "sad", "ok" } } },
--       domains     = { email = { type, not_null, default, checks = { name = definition } } },
--     } },
--     roles          = { app = { superuser, inherit, create_role, create_db, login, replication,
--                                bypass_rls, connection_limit, valid_until, member_of = { "readers" },
--                                settings = { "work_mem=64MB" }, password } },  -- password: md5 of
--                                                          -- the stored secret, where readable
--     database       = { settings = { "statement_timeout=5s" } },   -- ALTER DATABASE ... SET
--     extensions     = { pgcrypto = { version, schema } },
--     publications   = { pub = { all_tables, publish, via_root, tables, schemas } },
--     event_triggers = { audit_ddl = { event, function, enabled, tags } },
--     objects        = { ["table public.users"] = { kind, schema, identity, owner, comment,
--                            privileges = { ["(owner)"] = "DELETE, INSERT, ...", app = "SELECT" },
--                            structural, parent } },
--     digest = "<sha256 hex>" }
--
-- `schemas` holds every schema but PostgreSQL's own (pg_catalog, information_schema, pg_toast,
-- temporary schemas) unless opts.schemas names some; a named schema that does not exist is
-- absent. Roles are the cluster's (without the predefined pg_* roles); extensions, publications,
-- event triggers and database settings the database's. `objects` holds the owner, privileges
-- and comment of every object in those schemas (tables, columns with privileges of their own,
-- sequences, functions, types, schemas, ...) and of the objects in no schema (the database,
-- extensions, publications, event triggers, languages, foreign data wrappers and servers, large
-- objects, default privileges, roles' comments); privileges are expanded (no ACL means the
-- owner's defaults), so a GRANT undone by its REVOKE compares equal, and the owner's own are
-- under "(owner)", so a new owner is one change. Objects that belong to an
-- extension are the extension's, fingerprinted by its version.
--
-- Row hashes are md5 of the ordered md5(row::text) of every row, computed by the server. The
-- digest is the server's SHA-256 of a canonical serialization (sorted keys; columns and enum
-- labels in their order): the same state gives the same digest whatever the creation order of
-- objects, their OIDs or the physical order of rows. Everything is read in one REPEATABLE READ,
-- READ ONLY transaction (one snapshot), with search_path, TimeZone, DateStyle, IntervalStyle,
-- extra_float_digits, bytea_output and lc_monetary pinned so that definitions and row text do
-- not depend on the session. Called inside an open transaction (a `transaction = true` phase),
-- it reads in that transaction instead, seeing its uncommitted changes, and restores the
-- settings afterwards.
--
-- fingerprint.diff(a, b) lists how b differs from a, in words, sorted ({} when equal):
--   "table users: 3 rows more"            "table users: content changed (same row count)"
--   "column users.version added"          "column users.email type changed from text to character varying(255)"
--   "index idx_x missing"                 "policy tenant_select on conversations changed (using)"
--   "function public.f(text) missing"     "sequence users_id_seq: last_value changed from 12 to 15"
--   "schema billing added"                "table billing.invoices added"
--   "role app_ro added"                   "role app: granted membership in readers"
--   "table orders: SELECT granted to app" "table orders: owner changed from postgres to app"
--   "column orders.note: comment added: \"free text\""  "extension pgcrypto: version changed from 1.2 to 1.3"
-- A schema added or missing is named, then everything in it. A table, view or materialized
-- view added or missing is one line: its constraints, indexes, policies, triggers, rules, owned
-- sequences, owner, privileges and comments are not listed with it. Names are shown without
-- their schema in "public" (functions always with it) and quoted when they are not plain
-- lower-case identifiers ("table \"Weird Name\": 1 row more").
--
-- fingerprint.equal(a, b) is true when the two fingerprints describe the same state.
local fingerprint = {}
local catalog = require "fingerprint.catalog"
local differ = require "fingerprint.diff"

--- The fingerprint of `db` (ctx.db or a db.connect() connection): opts.schemas (default:
--- every schema but PostgreSQL's own), opts.data (default true: row counts, content hashes, sequence positions).
function fingerprint.take(db, opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error({ kind = "usage", class = "fingerprint", message = "fingerprint.take(db, opts): opts must be a table" }, 2)
  end
  local schemas = opts.schemas
  if type(schemas) == "string" then schemas = { schemas } end
  if schemas ~= nil and (type(schemas) ~= "table" or #schemas == 0) then
    error({ kind = "usage", class = "fingerprint", message = "fingerprint.take: schemas must be a non-empty list of names" }, 2)
  end
  for i, s in ipairs(schemas or {}) do
    if type(s) ~= "string" then
      error({ kind = "usage", class = "fingerprint", message = "fingerprint.take: schema " .. i .. " is not a string" }, 2)
    end
  end
  local data = opts.data
  if data == nil then data = true end
  return catalog.read(db, schemas, data and true or false)
end

--- How `b` differs from `a`, as a sorted list of sentences ({} when they are the same).
function fingerprint.diff(a, b)
  if type(a) ~= "table" or type(b) ~= "table" or type(a.schemas) ~= "table" or type(b.schemas) ~= "table" then
    error({ kind = "usage", class = "fingerprint", message = "fingerprint.diff(a, b) needs two fingerprints from fingerprint.take" }, 2)
  end
  return differ.diff(a, b)
end

--- True when `a` and `b` describe the same state.
function fingerprint.equal(a, b)
  if type(a) == "table" and type(b) == "table" and a.digest and b.digest then return a.digest == b.digest end
  return #fingerprint.diff(a, b) == 0
end

return fingerprint
