-- Fingerprints of a database's schema and data, to prove that a rollback restores it exactly.
--
--   local fingerprint = require "fingerprint"
--
--   local before = fingerprint.take(ctx.db)                       -- schema "public", with data
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
--   { version = 1, data = true, schemas = { public = {
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
--       views       = { v = { definition, options } },
--       matviews    = { m = { definition, options, populated } },
--       sequences   = { users_id_seq = { type, increment, min, max, start, cache, cycle,
--                                        owned_by = { "public", "users", "id" },
--                                        last_value } },             -- last_value with data only
--       enums       = { mood = { labels = { "sad", "ok" } } },
--       domains     = { email = { type, not_null, default, checks = { name = definition } } },
--       extensions  = { pgcrypto = { version } },
--     } },
--     digest = "<sha256 hex>" }
--
-- A schema that does not exist is absent from `schemas`. Row hashes are md5 of the ordered
-- md5(row::text) of every row, computed by the server. The digest is the server's SHA-256 of a
-- canonical serialization (sorted keys; columns and enum labels in their order): the same
-- state gives the same digest whatever the creation order of objects, their OIDs or the
-- physical order of rows. Everything is read in one REPEATABLE READ, READ ONLY transaction
-- (one snapshot), with search_path, TimeZone, DateStyle, IntervalStyle, extra_float_digits,
-- bytea_output and lc_monetary pinned so that definitions and row text do not depend on the
-- session. Called inside an open transaction (a `transaction = true` phase), it reads in that
-- transaction instead, seeing its uncommitted changes, and restores the settings afterwards.
--
-- fingerprint.diff(a, b) lists how b differs from a, in words, sorted ({} when equal):
--   "table users: 3 rows more"            "table users: content changed (same row count)"
--   "column users.version added"          "column users.email type changed from text to character varying(255)"
--   "index idx_x missing"                 "policy tenant_select on conversations changed (using)"
--   "function public.f(text) missing"     "sequence users_id_seq: last_value changed from 12 to 15"
-- A table, view or materialized view added or missing is one line: its constraints, indexes,
-- policies, triggers and owned sequences are not listed with it. Names are shown without their
-- schema in "public" (functions always with it) and quoted when they are not plain lower-case
-- identifiers ("table \"Weird Name\": 1 row more").
--
-- fingerprint.equal(a, b) is true when the two fingerprints describe the same state.
local fingerprint = {}
local sql_array = db.array  -- the db module; below, `db` is the connection being read

-- ---- reading -------------------------------------------------------------------------------

-- Plain Lua values: SQL NULL (db.null) becomes nil.
local function val(v)
  if type(v) == "userdata" then return nil end
  return v
end

-- Objects that belong to an extension are the extension's, fingerprinted by its version.
local function not_extension_member(catalog, oid_expr)
  return "NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = '" .. catalog ..
         "'::regclass AND ext.objid = " .. oid_expr .. " AND ext.deptype = 'e')"
end

local IN_SCHEMAS = "n.nspname = ANY ($1::text[])"

local TABLES_SQL = [[
SELECT n.nspname AS schema, c.relname AS name, format('%I.%I', n.nspname, c.relname) AS qualified,
       CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' ELSE 'foreign table' END AS kind,
       CASE c.relpersistence WHEN 'u' THEN 'unlogged' WHEN 't' THEN 'temporary' ELSE 'permanent' END AS persistence,
       c.relrowsecurity AS row_security, c.relforcerowsecurity AS force_row_security,
       (SELECT json_agg(o ORDER BY o) FROM unnest(c.reloptions) o) AS options,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS partition_bound,
       (SELECT string_agg(format('%I.%I', pn.nspname, pc.relname), ', ' ORDER BY i.inhseqno)
          FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
          JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid) AS parents,
       coalesce((SELECT json_agg(json_build_object(
                   'name', a.attname,
                   'type', format_type(a.atttypid, a.atttypmod),
                   'not_null', a.attnotnull,
                   'default', CASE WHEN a.attgenerated <> 's' THEN pg_get_expr(d.adbin, d.adrelid) END,
                   'generated', CASE WHEN a.attgenerated = 's' THEN pg_get_expr(d.adbin, d.adrelid) END,
                   'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
                   'collation', CASE WHEN a.attcollation <> t.typcollation THEN
                                  (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co
                                     JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END)
                 ORDER BY a.attnum)
                   FROM pg_attribute a
                   JOIN pg_type t ON t.oid = a.atttypid
                   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS columns
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE ]] .. IN_SCHEMAS .. [[ AND c.relkind IN ('r', 'p', 'f') AND ]] .. not_extension_member("pg_class", "c.oid")

local CONSTRAINTS_SQL = [[
SELECT n.nspname AS schema, c.relname AS table_name, co.conname AS name,
       CASE co.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' WHEN 'f' THEN 'foreign key'
                       WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' WHEN 't' THEN 'trigger'
                       ELSE co.contype::text END AS type,
       pg_get_constraintdef(co.oid) AS definition
  FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE ]] .. IN_SCHEMAS .. " AND " .. not_extension_member("pg_class", "c.oid")

local INDEXES_SQL = [[
SELECT n.nspname AS schema, ic.relname AS name, tc.relname AS table_name,
       pg_get_indexdef(i.indexrelid) AS definition, i.indisvalid AS valid
  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class tc ON tc.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = ic.relnamespace
 WHERE ]] .. IN_SCHEMAS .. " AND " .. not_extension_member("pg_class", "tc.oid")

local POLICIES_SQL = [[
SELECT n.nspname AS schema, c.relname AS table_name, p.polname AS name,
       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                     WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS command,
       p.polpermissive AS permissive,
       (SELECT json_agg(r ORDER BY r) FROM (SELECT CASE WHEN x = 0 THEN 'public' ELSE pg_get_userbyid(x)::text END AS r
                                              FROM unnest(p.polroles) x) roles) AS roles,
       pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE ]] .. IN_SCHEMAS

local FUNCTIONS_SQL = [[
SELECT n.nspname AS schema, p.proname AS name, pg_get_function_identity_arguments(p.oid) AS args,
       CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                      ELSE 'window function' END AS kind,
       CASE WHEN p.prokind = 'a' THEN
              (SELECT md5(concat_ws('|', pg_get_function_result(p.oid), a.aggkind, a.aggnumdirectargs,
                                    a.aggtransfn::regprocedure, a.aggfinalfn::regprocedure,
                                    a.aggcombinefn::regprocedure, a.aggsortop::regoperator,
                                    format_type(a.aggtranstype, NULL), a.agginitval))
                 FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
            ELSE md5(pg_get_functiondef(p.oid)) END AS hash
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE ]] .. IN_SCHEMAS .. " AND " .. not_extension_member("pg_proc", "p.oid")

local TRIGGERS_SQL = [[
SELECT n.nspname AS schema, c.relname AS table_name, t.tgname AS name, pg_get_triggerdef(t.oid) AS definition,
       CASE t.tgenabled WHEN 'O' THEN 'enabled' WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'enabled on replica'
                        WHEN 'A' THEN 'enabled always' END AS enabled
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE ]] .. IN_SCHEMAS .. " AND NOT t.tgisinternal AND " .. not_extension_member("pg_class", "c.oid")

local VIEWS_SQL = [[
SELECT n.nspname AS schema, c.relname AS name, c.relkind = 'm' AS materialized,
       pg_get_viewdef(c.oid) AS definition, c.relispopulated AS populated,
       (SELECT json_agg(o ORDER BY o) FROM unnest(c.reloptions) o) AS options
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE ]] .. IN_SCHEMAS .. " AND c.relkind IN ('v', 'm') AND " .. not_extension_member("pg_class", "c.oid")

local SEQUENCES_SQL = [[
SELECT n.nspname AS schema, c.relname AS name, format_type(s.seqtypid, NULL) AS type,
       s.seqincrement::text AS increment, s.seqmin::text AS min, s.seqmax::text AS max,
       s.seqstart::text AS start, s.seqcache::text AS cache, s.seqcycle AS cycle,
       (SELECT json_build_array(tn.nspname, tc.relname, a.attname)
          FROM pg_depend d JOIN pg_class tc ON tc.oid = d.refobjid
          JOIN pg_namespace tn ON tn.oid = tc.relnamespace
          JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
           AND d.deptype IN ('a', 'i') LIMIT 1) AS owned_by,
       CASE WHEN NOT $2 THEN NULL
            WHEN has_sequence_privilege(c.oid, 'SELECT,USAGE') THEN coalesce(pg_sequence_last_value(c.oid)::text, 'unused')
            ELSE 'unreadable' END AS last_value
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE ]] .. IN_SCHEMAS .. " AND " .. not_extension_member("pg_class", "c.oid")

local ENUMS_SQL = [[
SELECT n.nspname AS schema, t.typname AS name,
       coalesce((SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '[]') AS labels
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE ]] .. IN_SCHEMAS .. " AND t.typtype = 'e' AND " .. not_extension_member("pg_type", "t.oid")

local DOMAINS_SQL = [[
SELECT n.nspname AS schema, t.typname AS name, format_type(t.typbasetype, t.typtypmod) AS type,
       t.typnotnull AS not_null, t.typdefault AS "default",
       (SELECT json_object_agg(co.conname, pg_get_constraintdef(co.oid) ORDER BY co.conname)
          FROM pg_constraint co WHERE co.contypid = t.oid) AS checks
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE ]] .. IN_SCHEMAS .. " AND t.typtype = 'd' AND " .. not_extension_member("pg_type", "t.oid")

local EXTENSIONS_SQL = [[
SELECT n.nspname AS schema, e.extname AS name, e.extversion AS version
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE ]] .. IN_SCHEMAS

-- Settings that change how definitions and row text are printed, and the values they are
-- pinned to while a fingerprint is taken.
local PINNED = {
  { "search_path", "pg_catalog" }, { "TimeZone", "UTC" }, { "DateStyle", "ISO, MDY" },
  { "IntervalStyle", "postgres" }, { "extra_float_digits", "1" }, { "bytea_output", "hex" },
  { "lc_monetary", "C" },
}

-- Sets each { name, value } of `settings` for the rest of the transaction (SET LOCAL).
local function set_local(db, settings)
  local sets, values = {}, {}
  for i, s in ipairs(settings) do
    sets[i] = string.format("set_config($%d, $%d, true)", 2 * i - 1, 2 * i)
    values[#values + 1] = s[1]
    values[#values + 1] = s[2]
  end
  db:query("SELECT " .. table.concat(sets, ", "), unpack(values))
end

-- The current values of the pinned settings, as { name, value } pairs.
local function current_settings(db)
  local reads, names = {}, {}
  for i, s in ipairs(PINNED) do
    reads[i] = string.format("current_setting($%d) AS s%d", i, i)
    names[i] = s[1]
  end
  local row = db:query("SELECT " .. table.concat(reads, ", "), unpack(names))[1]
  local saved = {}
  for i, s in ipairs(PINNED) do saved[i] = { s[1], row["s" .. i] } end
  return saved
end

-- Runs fn(db) on one snapshot: its own REPEATABLE READ, READ ONLY transaction, or, inside an
-- open transaction, that transaction (settings restored afterwards).
local function on_snapshot(db, fn)
  -- Outside a transaction block every statement is a transaction of its own, started at its
  -- own time; inside one, every statement sees the time the block began.
  local started = "SELECT transaction_timestamp()::text"
  local in_transaction = db:scalar(started) == db:scalar(started)
  if in_transaction then
    local saved = current_settings(db)
    set_local(db, PINNED)
    local result = fn(db)
    -- (fn fails only on SQL errors: rolling back the transaction, or to a savepoint, undoes them)
    set_local(db, saved)
    return result
  end
  local result
  db:transaction(function()
    db:exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    set_local(db, PINNED)
    result = fn(db)
  end)
  return result
end

local function schema_of(fp, name)
  local s = fp.schemas[name]
  if not s then
    s = { tables = {}, constraints = {}, indexes = {}, policies = {}, functions = {}, triggers = {},
          views = {}, matviews = {}, sequences = {}, enums = {}, domains = {}, extensions = {} }
    fp.schemas[name] = s
  end
  return s
end

-- t[k1][k2] = v, creating t[k1].
local function put2(t, k1, k2, v)
  t[k1] = t[k1] or {}
  t[k1][k2] = v
end

-- The canonical serialization: length-prefixed strings, sorted keys, lists in order.
local function serialize(v, out)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = "s" .. #v .. ":" .. v
  elseif t == "number" then
    out[#out + 1] = "n" .. string.format("%.17g", v) .. ";"
  elseif t == "boolean" then
    out[#out + 1] = v and "T" or "F"
  elseif t == "table" then
    local n, count = #v, 0
    for _ in pairs(v) do count = count + 1 end
    if n > 0 and n == count then
      out[#out + 1] = "["
      for i = 1, n do serialize(v[i], out) end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys, function(x, y)
        if type(x) == type(y) then return x < y end
        return type(x) < type(y)
      end)
      out[#out + 1] = "{"
      for _, k in ipairs(keys) do
        serialize(k, out)
        serialize(v[k], out)
      end
      out[#out + 1] = "}"
    end
  else
    error({ kind = "usage", class = "fingerprint", message = "fingerprint: cannot serialize a " .. t }, 0)
  end
  return out
end

local function read(db, schemas, data)
  local fp = { version = 1, data = data, schemas = {} }
  local wanted = sql_array(schemas)

  for _, r in ipairs(db:query("SELECT nspname AS name FROM pg_namespace WHERE nspname = ANY ($1::text[])", wanted)) do
    schema_of(fp, r.name)
  end

  local qualified = {}
  for _, r in ipairs(db:query(TABLES_SQL, wanted)) do
    schema_of(fp, r.schema).tables[r.name] = {
      kind = r.kind, persistence = r.persistence, row_security = r.row_security,
      force_row_security = r.force_row_security, options = val(r.options),
      partition_key = val(r.partition_key), partition_bound = val(r.partition_bound), parents = val(r.parents),
      columns = r.columns,
    }
    if data and r.kind == "table" then qualified[#qualified + 1] = { r.schema, r.name, r.qualified } end
  end
  for _, r in ipairs(db:query(CONSTRAINTS_SQL, wanted)) do
    put2(schema_of(fp, r.schema).constraints, r.table_name, r.name, { type = r.type, definition = r.definition })
  end
  for _, r in ipairs(db:query(INDEXES_SQL, wanted)) do
    schema_of(fp, r.schema).indexes[r.name] = { table = r.table_name, definition = r.definition, valid = r.valid }
  end
  for _, r in ipairs(db:query(POLICIES_SQL, wanted)) do
    put2(schema_of(fp, r.schema).policies, r.table_name, r.name, {
      command = r.command, permissive = r.permissive, roles = val(r.roles),
      qual = val(r.qual), with_check = val(r.with_check),
    })
  end
  for _, r in ipairs(db:query(FUNCTIONS_SQL, wanted)) do
    schema_of(fp, r.schema).functions[r.name .. "(" .. r.args .. ")"] = { kind = r.kind, hash = val(r.hash) }
  end
  for _, r in ipairs(db:query(TRIGGERS_SQL, wanted)) do
    put2(schema_of(fp, r.schema).triggers, r.table_name, r.name, { definition = r.definition, enabled = r.enabled })
  end
  for _, r in ipairs(db:query(VIEWS_SQL, wanted)) do
    local s = schema_of(fp, r.schema)
    if r.materialized then
      s.matviews[r.name] = { definition = val(r.definition), options = val(r.options), populated = r.populated }
    else
      s.views[r.name] = { definition = val(r.definition), options = val(r.options) }
    end
  end
  for _, r in ipairs(db:query(SEQUENCES_SQL, wanted, data)) do
    schema_of(fp, r.schema).sequences[r.name] = {
      type = r.type, increment = r.increment, min = r.min, max = r.max, start = r.start, cache = r.cache,
      cycle = r.cycle, owned_by = val(r.owned_by), last_value = val(r.last_value),
    }
  end
  for _, r in ipairs(db:query(ENUMS_SQL, wanted)) do
    schema_of(fp, r.schema).enums[r.name] = { labels = r.labels }
  end
  for _, r in ipairs(db:query(DOMAINS_SQL, wanted)) do
    schema_of(fp, r.schema).domains[r.name] = {
      type = r.type, not_null = r.not_null, default = val(r.default), checks = val(r.checks),
    }
  end
  for _, r in ipairs(db:query(EXTENSIONS_SQL, wanted)) do
    schema_of(fp, r.schema).extensions[r.name] = { version = r.version }
  end

  -- Data: row count and content hash per table. The name comes quoted from the server
  -- (format('%I.%I')); ONLY: a parent's rows and its children's are fingerprinted apart.
  for _, q in ipairs(qualified) do
    local r = db:query("SELECT count(*) AS n, md5(coalesce(string_agg(h, '' ORDER BY h COLLATE \"C\"), '')) AS hash" ..
                       " FROM (SELECT md5(rb_row.*::text) AS h FROM ONLY " .. q[3] .. " rb_row) hashes")[1]
    local t = fp.schemas[q[1]].tables[q[2]]
    t.rows, t.hash = r.n, r.hash
  end

  fp.digest = db:scalar("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", table.concat(serialize(fp, {})))
  return fp
end

--- The fingerprint of `db` (ctx.db or a db.connect() connection): opts.schemas (default
--- {"public"}), opts.data (default true: row counts, content hashes, sequence positions).
function fingerprint.take(db, opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error({ kind = "usage", class = "fingerprint", message = "fingerprint.take(db, opts): opts must be a table" }, 2)
  end
  local schemas = opts.schemas or { "public" }
  if type(schemas) == "string" then schemas = { schemas } end
  if type(schemas) ~= "table" or #schemas == 0 then
    error({ kind = "usage", class = "fingerprint", message = "fingerprint.take: schemas must be a non-empty list of names" }, 2)
  end
  for i, s in ipairs(schemas) do
    if type(s) ~= "string" then
      error({ kind = "usage", class = "fingerprint", message = "fingerprint.take: schema " .. i .. " is not a string" }, 2)
    end
  end
  local data = opts.data
  if data == nil then data = true end
  return on_snapshot(db, function() return read(db, schemas, data and true or false) end)
end

-- ---- comparing -----------------------------------------------------------------------------

local function same(x, y)
  if x == y then return true end
  if type(x) ~= "table" or type(y) ~= "table" then return false end
  for k, v in pairs(x) do
    if not same(v, y[k]) then return false end
  end
  for k in pairs(y) do
    if x[k] == nil then return false end
  end
  return true
end

-- A name as SQL would need it: plain lower-case identifiers as they are, others quoted.
local function quote(name)
  if name:match("^[a-z_][a-z0-9_$]*$") then return name end
  return '"' .. name:gsub('"', '""') .. '"'
end

-- schema.name, without the schema when it is "public".
local function qname(schema, name)
  if schema == "public" then return quote(name) end
  return quote(schema) .. "." .. quote(name)
end

local function show(v)
  if v == nil then return "(none)" end
  if type(v) == "table" then
    local parts = {}
    if #v > 0 then
      for i, x in ipairs(v) do parts[i] = show(x) end
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      for i, k in ipairs(keys) do parts[i] = k .. "=" .. show(v[k]) end
    end
    return "(" .. table.concat(parts, ", ") .. ")"
  end
  return tostring(v)
end

local function sorted_keys(...)
  local seen, keys = {}, {}
  for i = 1, select("#", ...) do
    for k in pairs(select(i, ...) or {}) do
      if not seen[k] then
        seen[k] = true
        keys[#keys + 1] = k
      end
    end
  end
  table.sort(keys)
  return keys
end

-- Objects present on one side only, then compare(name, ra, rb) for those on both.
local function each_pair(out, a, b, label, compare)
  a, b = a or {}, b or {}
  for _, name in ipairs(sorted_keys(a, b)) do
    if b[name] == nil then
      out[#out + 1] = label(name) .. " missing"
    elseif a[name] == nil then
      out[#out + 1] = label(name) .. " added"
    else
      compare(name, a[name], b[name])
    end
  end
end

-- "<label>: <field> changed from X to Y" for every field that differs, except those in `skip`.
local function fields_from_to(out, label, ra, rb, skip)
  for _, f in ipairs(sorted_keys(ra, rb)) do
    if not (skip and skip[f]) and not same(ra[f], rb[f]) then
      out[#out + 1] = string.format("%s: %s changed from %s to %s", label, f, show(ra[f]), show(rb[f]))
    end
  end
end

-- "<label> changed (<field>, <field>)": for records whose fields are long texts.
local function fields_named(out, label, ra, rb, names, skip)
  local changed = {}
  for _, f in ipairs(sorted_keys(ra, rb)) do
    if not (skip and skip[f]) and not same(ra[f], rb[f]) then changed[#changed + 1] = (names and names[f]) or f:gsub("_", " ") end
  end
  if #changed > 0 then out[#out + 1] = label .. " changed (" .. table.concat(changed, ", ") .. ")" end
end

local function rows_word(n) return n == 1 and "1 row" or (n .. " rows") end

local function diff_columns(out, schema, tname, ca, cb)
  local col = function(name) return "column " .. qname(schema, tname) .. "." .. quote(name) end
  local by_a, by_b, order_a, order_b = {}, {}, {}, {}
  for _, c in ipairs(ca or {}) do by_a[c.name] = c end
  for _, c in ipairs(cb or {}) do by_b[c.name] = c end
  each_pair(out, by_a, by_b, col, function(name, a, b)
    local label = col(name)
    if a.type ~= b.type then out[#out + 1] = string.format("%s type changed from %s to %s", label, a.type, b.type) end
    if a.not_null ~= b.not_null then out[#out + 1] = label .. (b.not_null and " is now NOT NULL" or " is now nullable") end
    for _, f in ipairs(sorted_keys(a, b)) do
      if f ~= "name" and f ~= "type" and f ~= "not_null" and not same(a[f], b[f]) then
        out[#out + 1] = string.format("%s %s changed from %s to %s", label, f, show(a[f]), show(b[f]))
      end
    end
  end)
  -- Column order: the relative order of the columns both sides have.
  for _, c in ipairs(ca or {}) do if by_b[c.name] then order_a[#order_a + 1] = quote(c.name) end end
  for _, c in ipairs(cb or {}) do if by_a[c.name] then order_b[#order_b + 1] = quote(c.name) end end
  if not same(order_a, order_b) then
    out[#out + 1] = string.format("table %s: column order changed from %s to %s", qname(schema, tname), show(order_a), show(order_b))
  end
end

local function diff_tables(out, schema, a, b)
  each_pair(out, a, b, function(name) return "table " .. qname(schema, name) end, function(name, ta, tb)
    local label = "table " .. qname(schema, name)
    diff_columns(out, schema, name, ta.columns, tb.columns)
    if ta.row_security ~= tb.row_security then
      out[#out + 1] = label .. (tb.row_security and ": row level security enabled" or ": row level security disabled")
    end
    if ta.force_row_security ~= tb.force_row_security then
      out[#out + 1] = label .. (tb.force_row_security and ": row level security forced" or ": row level security no longer forced")
    end
    if ta.rows ~= nil and tb.rows ~= nil then
      if tb.rows > ta.rows then
        out[#out + 1] = string.format("%s: %s more", label, rows_word(tb.rows - ta.rows))
      elseif tb.rows < ta.rows then
        out[#out + 1] = string.format("%s: %s fewer", label, rows_word(ta.rows - tb.rows))
      elseif ta.hash ~= tb.hash then
        out[#out + 1] = label .. ": content changed (same row count)"
      end
    end
    fields_from_to(out, label, ta, tb, { columns = true, row_security = true, force_row_security = true, rows = true, hash = true })
  end)
end

-- a, b: table name -> object name -> record; tables in `gone` are skipped.
local function diff_per_table(out, kind, schema, a, b, gone, compare)
  for _, t in ipairs(sorted_keys(a, b)) do
    if not gone[t] then
      local on = " on " .. qname(schema, t)
      each_pair(out, (a or {})[t], (b or {})[t], function(name) return kind .. " " .. quote(name) .. on end,
                function(name, ra, rb) compare(kind .. " " .. quote(name) .. on, ra, rb) end)
    end
  end
end

-- Names of the relations present on one side only.
local function one_sided(gone, a, b)
  a, b = a or {}, b or {}
  for k in pairs(a) do if b[k] == nil then gone[k] = true end end
  for k in pairs(b) do if a[k] == nil then gone[k] = true end end
  return gone
end

-- The records of `map` for which keep(record) is true.
local function only(map, keep)
  local out = {}
  for k, v in pairs(map or {}) do
    if keep(v) then out[k] = v end
  end
  return out
end

local function diff_schema(out, schema, a, b)
  diff_tables(out, schema, a.tables, b.tables)
  -- A relation added or missing is one line: its constraints, indexes, policies, triggers and
  -- owned sequences come and go with it.
  local gone = one_sided(one_sided(one_sided({}, a.tables, b.tables), a.views, b.views), a.matviews, b.matviews)
  local attached = function(r) return not gone[r.table] end
  local unowned = function(r) return not (r.owned_by and r.owned_by[1] == schema and gone[r.owned_by[2]]) end

  diff_per_table(out, "constraint", schema, a.constraints, b.constraints, gone, function(label, ra, rb)
    if ra.definition ~= rb.definition then
      out[#out + 1] = string.format("%s changed from %s to %s", label, ra.definition, rb.definition)
    end
    fields_from_to(out, label, ra, rb, { definition = true })
  end)

  each_pair(out, only(a.indexes, attached), only(b.indexes, attached), function(name) return "index " .. qname(schema, name) end, function(name, ra, rb)
    local label = "index " .. qname(schema, name)
    if ra.definition ~= rb.definition then
      out[#out + 1] = string.format("%s changed from %s to %s", label, ra.definition, rb.definition)
    end
    if ra.valid ~= rb.valid then out[#out + 1] = label .. (rb.valid and " is now valid" or " is now invalid") end
    fields_from_to(out, label, ra, rb, { definition = true, valid = true, table = true })
  end)

  diff_per_table(out, "policy", schema, a.policies, b.policies, gone, function(label, ra, rb)
    fields_named(out, label, ra, rb, { qual = "using", with_check = "with check" })
  end)

  each_pair(out, a.functions, b.functions, function(sig)
    local name, args = sig:match("^(.-)(%(.*%))$")
    return "function " .. quote(schema) .. "." .. quote(name) .. args
  end, function(sig, ra, rb)
    local name, args = sig:match("^(.-)(%(.*%))$")
    fields_named(out, "function " .. quote(schema) .. "." .. quote(name) .. args, ra, rb, { hash = "definition" })
  end)

  diff_per_table(out, "trigger", schema, a.triggers, b.triggers, gone, function(label, ra, rb)
    if ra.enabled ~= rb.enabled then
      out[#out + 1] = string.format("%s changed from %s to %s", label, show(ra.enabled), show(rb.enabled))
    end
    fields_named(out, label, ra, rb, nil, { enabled = true })
  end)

  each_pair(out, a.views, b.views, function(name) return "view " .. qname(schema, name) end, function(name, ra, rb)
    fields_named(out, "view " .. qname(schema, name), ra, rb)
  end)

  each_pair(out, a.matviews, b.matviews, function(name) return "materialized view " .. qname(schema, name) end,
            function(name, ra, rb)
    local label = "materialized view " .. qname(schema, name)
    if ra.populated ~= rb.populated then out[#out + 1] = label .. (rb.populated and " is now populated" or " is now unpopulated") end
    fields_named(out, label, ra, rb, nil, { populated = true })
  end)

  each_pair(out, only(a.sequences, unowned), only(b.sequences, unowned), function(name) return "sequence " .. qname(schema, name) end, function(name, ra, rb)
    fields_from_to(out, "sequence " .. qname(schema, name), ra, rb)
  end)

  each_pair(out, a.enums, b.enums, function(name) return "enum " .. qname(schema, name) end, function(name, ra, rb)
    local label = "enum " .. qname(schema, name)
    local la, lb, in_a, in_b = ra.labels or {}, rb.labels or {}, {}, {}
    for _, l in ipairs(la) do in_a[l] = true end
    for _, l in ipairs(lb) do in_b[l] = true end
    local changed = false
    for _, l in ipairs(lb) do
      if not in_a[l] then out[#out + 1], changed = string.format("%s: label %s added", label, l), true end
    end
    for _, l in ipairs(la) do
      if not in_b[l] then out[#out + 1], changed = string.format("%s: label %s missing", label, l), true end
    end
    if not changed and not same(la, lb) then
      out[#out + 1] = string.format("%s: labels reordered from %s to %s", label, show(la), show(lb))
    end
  end)

  each_pair(out, a.domains, b.domains, function(name) return "domain " .. qname(schema, name) end, function(name, ra, rb)
    local label = "domain " .. qname(schema, name)
    each_pair(out, ra.checks, rb.checks, function(c) return label .. ": constraint " .. quote(c) end, function(c, da, db)
      out[#out + 1] = string.format("%s: constraint %s changed from %s to %s", label, quote(c), da, db)
    end)
    fields_from_to(out, label, ra, rb, { checks = true })
  end)

  each_pair(out, a.extensions, b.extensions, function(name) return "extension " .. quote(name) end, function(name, ra, rb)
    fields_from_to(out, "extension " .. quote(name), ra, rb)
  end)
end

--- How `b` differs from `a`, as a sorted list of sentences ({} when they are the same).
function fingerprint.diff(a, b)
  if type(a) ~= "table" or type(b) ~= "table" or type(a.schemas) ~= "table" or type(b.schemas) ~= "table" then
    error({ kind = "usage", class = "fingerprint", message = "fingerprint.diff(a, b) needs two fingerprints from fingerprint.take" }, 2)
  end
  local out = {}
  if a.version ~= b.version then
    out[#out + 1] = string.format("fingerprint version changed from %s to %s", show(a.version), show(b.version))
  end
  if a.data ~= b.data then
    out[#out + 1] = string.format("fingerprints taken with data = %s and data = %s: data not compared", show(a.data), show(b.data))
  end
  each_pair(out, a.schemas, b.schemas, function(name) return "schema " .. quote(name) end, function(name, sa, sb)
    diff_schema(out, name, sa, sb)
  end)
  table.sort(out)
  return out
end

--- True when `a` and `b` describe the same state.
function fingerprint.equal(a, b)
  if type(a) == "table" and type(b) == "table" and a.digest and b.digest then return a.digest == b.digest end
  return #fingerprint.diff(a, b) == 0
end

return fingerprint
