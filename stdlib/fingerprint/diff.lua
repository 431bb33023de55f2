-- fingerprint.diff: how two fingerprints differ, in words (see fingerprint/init.lua).
local diff = {}

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

-- The differences inside one schema; returns the names of its relations present on one side only.
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

  diff_per_table(out, "rule", schema, a.rules, b.rules, gone, function(label, ra, rb)
    if ra.enabled ~= rb.enabled then
      out[#out + 1] = string.format("%s changed from %s to %s", label, show(ra.enabled), show(rb.enabled))
    end
    fields_named(out, label, ra, rb, nil, { enabled = true })
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
  return gone
end


-- Members of list b not in list a, in b's order.
local function not_in(a, b)
  local seen, out = {}, {}
  for _, x in ipairs(a or {}) do seen[x] = true end
  for _, x in ipairs(b or {}) do if not seen[x] then out[#out + 1] = x end end
  return out
end

-- "<label>: <what> <x> added" and "... missing" for the members of two lists.
local function list_members(out, label, what, la, lb)
  for _, x in ipairs(not_in(la, lb)) do out[#out + 1] = string.format("%s: %s %s added", label, what, x) end
  for _, x in ipairs(not_in(lb, la)) do out[#out + 1] = string.format("%s: %s %s missing", label, what, x) end
end

local function diff_roles(out, a, b)
  each_pair(out, a, b, function(name) return "role " .. quote(name) end, function(name, ra, rb)
    local label = "role " .. quote(name)
    for _, m in ipairs(not_in(ra.member_of, rb.member_of)) do out[#out + 1] = label .. ": granted membership in " .. m end
    for _, m in ipairs(not_in(rb.member_of, ra.member_of)) do out[#out + 1] = label .. ": membership in " .. m .. " revoked" end
    list_members(out, label, "setting", ra.settings, rb.settings)
    if ra.password ~= rb.password then out[#out + 1] = label .. ": password changed" end
    fields_from_to(out, label, ra, rb, { member_of = true, settings = true, password = true })
  end)
end

local function diff_database(out, a, b)
  list_members(out, "database", "setting", (a.database or {}).settings, (b.database or {}).settings)
  each_pair(out, a.extensions, b.extensions, function(name) return "extension " .. quote(name) end, function(name, ra, rb)
    fields_from_to(out, "extension " .. quote(name), ra, rb)
  end)
  each_pair(out, a.publications, b.publications, function(name) return "publication " .. quote(name) end,
            function(name, ra, rb)
    local label = "publication " .. quote(name)
    list_members(out, label, "table", ra.tables, rb.tables)
    list_members(out, label, "schema", ra.schemas, rb.schemas)
    fields_from_to(out, label, ra, rb, { tables = true, schemas = true })
  end)
  each_pair(out, a.event_triggers, b.event_triggers, function(name) return "event trigger " .. quote(name) end,
            function(name, ra, rb)
    fields_from_to(out, "event trigger " .. quote(name), ra, rb)
  end)
end

local FUNCTION_KINDS = { ["function"] = true, procedure = true, aggregate = true }

-- How an object of the `objects` map is named: its kind and PostgreSQL's identity, without
-- "public." (functions keep it, as elsewhere).
local function object_label(r)
  if r.kind == "database" then return "database" end
  local id = r.identity or "?"
  if r.schema == "public" and not FUNCTION_KINDS[r.kind] then
    id = id:gsub("^public%.", ""):gsub(" on public%.", " on ")
  end
  return r.kind .. " " .. id
end

local function text(s) return '"' .. s .. '"' end

-- Owner, privileges (grantee -> "SELECT, UPDATE WITH GRANT OPTION") and comment of an object
-- that both sides have (or a sub-object's privileges and comment on one side: ra or rb = {}).
local function diff_object(out, label, ra, rb)
  if ra.owner ~= rb.owner and ra.owner and rb.owner then
    out[#out + 1] = string.format("%s: owner changed from %s to %s", label, ra.owner, rb.owner)
  end
  local pa, pb = ra.privileges or {}, rb.privileges or {}
  for _, grantee in ipairs(sorted_keys(pa, pb)) do
    local x, y = pa[grantee], pb[grantee]
    if x == nil then
      out[#out + 1] = string.format("%s: %s granted to %s", label, y, grantee)
    elseif y == nil then
      out[#out + 1] = string.format("%s: %s no longer granted to %s", label, x, grantee)
    elseif x ~= y then
      out[#out + 1] = string.format("%s: privileges of %s changed from %s to %s", label, grantee, x, y)
    end
  end
  if ra.comment ~= rb.comment then
    if ra.comment == nil then
      out[#out + 1] = string.format("%s: comment added: %s", label, text(rb.comment))
    elseif rb.comment == nil then
      out[#out + 1] = string.format("%s: comment removed (was %s)", label, text(ra.comment))
    else
      out[#out + 1] = string.format("%s: comment changed from %s to %s", label, text(ra.comment), text(rb.comment))
    end
  end
end

-- gone: schema -> relation names present on one side only (their columns' privileges and
-- comments, and those of their constraints, indexes, triggers, rules and policies go with them).
local function diff_objects(out, a, b, gone)
  a, b = a or {}, b or {}
  for _, key in ipairs(sorted_keys(a, b)) do
    local ra, rb = a[key], b[key]
    local r = ra or rb
    local label = object_label(r)
    if ra and rb then
      diff_object(out, label, ra, rb)
    elseif r.owner ~= nil then
      -- an object of its own on one side: said in the structure when it is listed there
      if not r.structural then out[#out + 1] = label .. (ra and " missing" or " added") end
    elseif not (r.parent and r.schema and gone[r.schema] and gone[r.schema][r.parent]) then
      diff_object(out, label, ra or {}, rb or {})
    end
  end
end

--- How `b` differs from `a`, as a sorted list of sentences ({} when they are the same).
function diff.diff(a, b)
  local out = {}
  if a.version ~= b.version then
    out[#out + 1] = string.format("fingerprint version changed from %s to %s", show(a.version), show(b.version))
  end
  if a.data ~= b.data then
    out[#out + 1] = string.format("fingerprints taken with data = %s and data = %s: data not compared", show(a.data), show(b.data))
  end
  local gone = {}
  for _, name in ipairs(sorted_keys(a.schemas, b.schemas)) do
    local sa, sb = a.schemas[name], b.schemas[name]
    -- a schema added or missing is named, then everything in it
    if sa == nil then out[#out + 1] = "schema " .. quote(name) .. " added" end
    if sb == nil then out[#out + 1] = "schema " .. quote(name) .. " missing" end
    gone[name] = diff_schema(out, name, sa or {}, sb or {})
  end
  diff_roles(out, a.roles, b.roles)
  diff_database(out, a, b)
  diff_objects(out, a.objects, b.objects, gone)
  table.sort(out)
  return out
end

return diff
