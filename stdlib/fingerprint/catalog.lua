-- fingerprint.catalog: what a fingerprint reads from PostgreSQL's catalogs, in one snapshot.
-- The shape of the result is described in fingerprint/init.lua.
local catalog = {}
local sql_array = db.array  -- the db module; below, `db` is the connection being read

-- Plain Lua values: SQL NULL (db.null) becomes nil.
local function val(v)
  if type(v) == "userdata" then return nil end
  return v
end

-- Objects that belong to an extension are the extension's, fingerprinted by its version.
local function not_extension_member(catalog_table, oid_expr)
  return "NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = '" .. catalog_table ..
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

local RULES_SQL = [[
SELECT n.nspname AS schema, c.relname AS table_name, r.rulename AS name, pg_get_ruledef(r.oid) AS definition,
       CASE r.ev_enabled WHEN 'O' THEN 'enabled' WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'enabled on replica'
                         WHEN 'A' THEN 'enabled always' END AS enabled
  FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE ]] .. IN_SCHEMAS .. " AND r.rulename <> '_RETURN' AND " .. not_extension_member("pg_class", "c.oid")

-- Every schema but PostgreSQL's own: what a fingerprint covers unless told otherwise.
local USER_SCHEMAS_SQL = [[
SELECT n.nspname AS name FROM pg_namespace n
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_'
 ORDER BY 1]]

-- ---- cluster and database: roles, extensions, publications, event triggers, settings ------

-- Roles are the cluster's (PostgreSQL's predefined pg_* roles left out); the password is read
-- (as an md5 of the stored secret) only where pg_authid is readable.
local ROLES_SQL = [[
SELECT r.rolname AS name, r.rolsuper AS superuser, r.rolinherit AS inherit, r.rolcreaterole AS create_role,
       r.rolcreatedb AS create_db, r.rolcanlogin AS login, r.rolreplication AS replication,
       r.rolbypassrls AS bypass_rls, r.rolconnlimit AS connection_limit, r.rolvaliduntil::text AS valid_until,
       (SELECT json_agg(x ORDER BY x) FROM (
          SELECT quote_ident(g.rolname) || CASE WHEN m.admin_option THEN ' with admin option' ELSE '' END AS x
            FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid) x) AS member_of,
       (SELECT json_agg(x ORDER BY x) FROM (
          SELECT cfg || CASE WHEN s.setdatabase = 0 THEN '' ELSE ' (in this database)' END AS x
            FROM pg_db_role_setting s, unnest(s.setconfig) cfg
           WHERE s.setrole = r.oid AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))) x) AS settings
  FROM pg_roles r
 WHERE r.rolname !~ '^pg_']]

local PASSWORDS_SQL = [[
SELECT rolname AS name, md5(coalesce(rolpassword, '')) AS password FROM pg_authid WHERE rolname !~ '^pg_']]

local DATABASE_SQL = [[
SELECT (SELECT json_agg(cfg ORDER BY cfg) FROM pg_db_role_setting s, unnest(s.setconfig) cfg
         WHERE s.setrole = 0 AND s.setdatabase = d.oid) AS settings
  FROM pg_database d WHERE d.datname = current_database()]]

local EXTENSIONS_SQL = [[
SELECT e.extname AS name, e.extversion AS version, n.nspname AS schema
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace]]

local PUBLICATIONS_SQL = [[
SELECT p.pubname AS name, p.puballtables AS all_tables, p.pubviaroot AS via_root,
       concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END, CASE WHEN p.pubupdate THEN 'update' END,
                 CASE WHEN p.pubdelete THEN 'delete' END, CASE WHEN p.pubtruncate THEN 'truncate' END) AS publish,
       (SELECT json_agg(x ORDER BY x) FROM (
          SELECT format('%I.%I', n.nspname, c.relname)
                 || coalesce(' (' || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                                       WHERE a.attrelid = pr.prrelid AND a.attnum = ANY (pr.prattrs::int2[])) || ')', '')
                 || coalesce(' WHERE ' || pg_get_expr(pr.prqual, pr.prrelid), '') AS x
            FROM pg_publication_rel pr JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE pr.prpubid = p.oid) x) AS tables,
       (SELECT json_agg(n.nspname ORDER BY n.nspname) FROM pg_publication_namespace pn
          JOIN pg_namespace n ON n.oid = pn.pnnspid WHERE pn.pnpubid = p.oid) AS schemas
  FROM pg_publication p]]

local EVENT_TRIGGERS_SQL = [[
SELECT e.evtname AS name, e.evtevent AS event, e.evtfoid::regprocedure::text AS function,
       CASE e.evtenabled WHEN 'O' THEN 'enabled' WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'enabled on replica'
                         WHEN 'A' THEN 'enabled always' END AS enabled,
       (SELECT json_agg(t ORDER BY t) FROM unnest(e.evttags) t) AS tags
  FROM pg_event_trigger e WHERE ]] .. not_extension_member("pg_event_trigger", "e.oid")

-- ---- owners, privileges and comments of every object ---------------------------------------

-- One row per object that has an owner or privileges (in the schemas read, or not in a schema),
-- and per object with a comment: (classid, objid, subid) as pg_identify_object knows it, the
-- owner, the ACL (NULL: the default for acltype and the owner), and whether the structural
-- fingerprint lists the object itself (then its coming and going is said there). Privileges
-- are per grantee, the owner's as "(owner)": a new owner with the same rights is one change.
local function owned(cat, oid, owner, acl, acltype, structural, kind, from_where)
  return string.format("SELECT '%s'::regclass, %s, 0, %s, %s, %s, %s, %s FROM %s",
                       cat, oid, owner, acl, acltype and ("'" .. acltype .. "'::\"char\"") or "NULL::\"char\"",
                       structural, kind and ("'" .. kind .. "'") or "NULL", from_where)
end

local function in_schema(ns_column)
  return "JOIN pg_namespace n ON n.oid = " .. ns_column .. " WHERE " .. IN_SCHEMAS
end

local OBJECTS_SQL = [[
WITH objs(classid, objid, subid, owner, acl, acltype, structural, kind) AS (
  ]] .. owned("pg_class", "c.oid", "c.relowner", "c.relacl", "r", "true", nil,
              "pg_class c " .. in_schema("c.relnamespace") .. " AND c.relkind IN ('r', 'p', 'f', 'v', 'm') AND " ..
              not_extension_member("pg_class", "c.oid")) .. [[
  UNION ALL ]] .. owned("pg_class", "c.oid", "c.relowner", "c.relacl", "s", "true", nil,
              "pg_class c " .. in_schema("c.relnamespace") .. " AND c.relkind = 'S' AND " ..
              not_extension_member("pg_class", "c.oid")) .. [[
  UNION ALL SELECT 'pg_class'::regclass, a.attrelid, a.attnum::int, NULL::oid, a.attacl, 'c'::"char", true, NULL
              FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid ]] .. in_schema("c.relnamespace") .. [[
               AND a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped AND ]] ..
              not_extension_member("pg_class", "c.oid") .. [[
  UNION ALL ]] .. owned("pg_proc", "p.oid", "p.proowner", "p.proacl", "f", "true", nil,
              "pg_proc p " .. in_schema("p.pronamespace") .. " AND " .. not_extension_member("pg_proc", "p.oid")) .. [[
  UNION ALL SELECT 'pg_type'::regclass, t.oid, 0, t.typowner, t.typacl, 'T'::"char", t.typtype IN ('e', 'd'),
                   CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' END
              FROM pg_type t ]] .. in_schema("t.typnamespace") .. [[
               AND t.typtype IN ('b', 'c', 'd', 'e', 'r')
               AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
               AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid) AND ]] ..
              not_extension_member("pg_type", "t.oid") .. [[
  UNION ALL ]] .. owned("pg_namespace", "n.oid", "n.nspowner", "n.nspacl", "n", "true", nil,
              "pg_namespace n WHERE " .. IN_SCHEMAS) .. [[
  UNION ALL ]] .. owned("pg_database", "d.oid", "d.datdba", "d.datacl", "d", "true", nil,
              "pg_database d WHERE d.datname = current_database()") .. [[
  UNION ALL ]] .. owned("pg_language", "l.oid", "l.lanowner", "l.lanacl", "l", "false", nil,
              "pg_language l WHERE l.lanispl AND " .. not_extension_member("pg_language", "l.oid")) .. [[
  UNION ALL ]] .. owned("pg_foreign_data_wrapper", "w.oid", "w.fdwowner", "w.fdwacl", "F", "false", nil,
              "pg_foreign_data_wrapper w WHERE " .. not_extension_member("pg_foreign_data_wrapper", "w.oid")) .. [[
  UNION ALL ]] .. owned("pg_foreign_server", "s.oid", "s.srvowner", "s.srvacl", "S", "false", nil,
              "pg_foreign_server s WHERE " .. not_extension_member("pg_foreign_server", "s.oid")) .. [[
  UNION ALL ]] .. owned("pg_largeobject", "m.oid", "m.lomowner", "m.lomacl", "L", "false", nil,
              "pg_largeobject_metadata m") .. [[
  UNION ALL ]] .. owned("pg_extension", "e.oid", "e.extowner", "NULL::aclitem[]", nil, "true", nil, "pg_extension e") .. [[
  UNION ALL ]] .. owned("pg_publication", "p.oid", "p.pubowner", "NULL::aclitem[]", nil, "true", nil, "pg_publication p") .. [[
  UNION ALL ]] .. owned("pg_event_trigger", "e.oid", "e.evtowner", "NULL::aclitem[]", nil, "true", nil,
              "pg_event_trigger e WHERE " .. not_extension_member("pg_event_trigger", "e.oid")) .. [[
  UNION ALL ]] .. owned("pg_collation", "o.oid", "o.collowner", "NULL::aclitem[]", nil, "false", nil,
              "pg_collation o " .. in_schema("o.collnamespace") .. " AND " .. not_extension_member("pg_collation", "o.oid")) .. [[
  UNION ALL ]] .. owned("pg_conversion", "o.oid", "o.conowner", "NULL::aclitem[]", nil, "false", nil,
              "pg_conversion o " .. in_schema("o.connamespace") .. " AND " .. not_extension_member("pg_conversion", "o.oid")) .. [[
  UNION ALL ]] .. owned("pg_operator", "o.oid", "o.oprowner", "NULL::aclitem[]", nil, "false", nil,
              "pg_operator o " .. in_schema("o.oprnamespace") .. " AND " .. not_extension_member("pg_operator", "o.oid")) .. [[
  UNION ALL ]] .. owned("pg_opclass", "o.oid", "o.opcowner", "NULL::aclitem[]", nil, "false", nil,
              "pg_opclass o " .. in_schema("o.opcnamespace") .. " AND " .. not_extension_member("pg_opclass", "o.oid")) .. [[
  UNION ALL ]] .. owned("pg_opfamily", "o.oid", "o.opfowner", "NULL::aclitem[]", nil, "false", nil,
              "pg_opfamily o " .. in_schema("o.opfnamespace") .. " AND " .. not_extension_member("pg_opfamily", "o.oid")) .. [[
  UNION ALL ]] .. owned("pg_ts_config", "o.oid", "o.cfgowner", "NULL::aclitem[]", nil, "false", nil,
              "pg_ts_config o " .. in_schema("o.cfgnamespace") .. " AND " .. not_extension_member("pg_ts_config", "o.oid")) .. [[
  UNION ALL ]] .. owned("pg_ts_dict", "o.oid", "o.dictowner", "NULL::aclitem[]", nil, "false", nil,
              "pg_ts_dict o " .. in_schema("o.dictnamespace") .. " AND " .. not_extension_member("pg_ts_dict", "o.oid")) .. [[
  UNION ALL ]] .. owned("pg_statistic_ext", "o.oid", "o.stxowner", "NULL::aclitem[]", nil, "false", nil,
              "pg_statistic_ext o " .. in_schema("o.stxnamespace")) .. [[
  UNION ALL SELECT 'pg_default_acl'::regclass, d.oid, 0, NULL::oid,  -- what it grants beyond the built-in defaults
                   ARRAY(SELECT x FROM unnest(d.defaclacl) x WHERE NOT x = ANY (acldefault(
                     CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END, d.defaclrole))),
                   NULL::"char", false, NULL
              FROM pg_default_acl d
             WHERE d.defaclnamespace = 0 OR d.defaclnamespace IN (SELECT n.oid FROM pg_namespace n WHERE ]] .. IN_SCHEMAS .. [[)
),
comments(classid, objid, subid, comment) AS (
  SELECT d.classoid, d.objoid, d.objsubid, d.description FROM pg_description d
   WHERE (d.objoid >= 16384 OR d.classoid IN ('pg_namespace'::regclass, 'pg_extension'::regclass))
     AND NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = d.classoid AND ext.objid = d.objoid AND ext.deptype = 'e')
  UNION ALL
  SELECT d.classoid, d.objoid, 0, d.description FROM pg_shdescription d
   WHERE (d.classoid = 'pg_database'::regclass AND d.objoid = (SELECT oid FROM pg_database WHERE datname = current_database()))
      OR (d.classoid = 'pg_authid'::regclass AND pg_get_userbyid(d.objoid) !~ '^pg_')
),
joined AS (
  SELECT coalesce(o.classid, c.classid) AS classid, coalesce(o.objid, c.objid) AS objid,
         coalesce(o.subid, c.subid) AS subid, o.owner, o.acl, o.acltype, o.structural, o.kind,
         o.classid IS NOT NULL AS listed, c.comment
    FROM objs o FULL JOIN comments c ON c.classid = o.classid AND c.objid = o.objid AND c.subid = o.subid
)
SELECT i.type, i.schema, i.name, j.kind, j.structural, j.comment,
       CASE WHEN j.classid = 'pg_proc'::regclass THEN  -- as the functions are named elsewhere
         (SELECT format('%I.%I(%s)', pn.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
            FROM pg_proc p JOIN pg_namespace pn ON pn.oid = p.pronamespace WHERE p.oid = j.objid)
       ELSE i.identity END AS identity,
       CASE WHEN j.owner IS NOT NULL AND j.subid = 0 THEN pg_get_userbyid(j.owner)::text END AS owner,
       CASE WHEN j.acl IS NOT NULL OR j.acltype IS NOT NULL THEN
         (SELECT json_object_agg(grantee, privileges) FROM (
            SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' WHEN x.grantee = j.owner THEN '(owner)'
                        ELSE quote_ident(pg_get_userbyid(x.grantee)) END AS grantee,
                   string_agg(x.privilege_type || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END, ', '
                              ORDER BY x.privilege_type) AS privileges
              FROM aclexplode(coalesce(j.acl, acldefault(j.acltype, j.owner))) x GROUP BY 1) g) END AS privileges,
       (SELECT relname FROM pg_class WHERE oid = CASE
          WHEN j.classid = 'pg_class'::regclass AND j.subid > 0 THEN j.objid
          WHEN j.classid = 'pg_class'::regclass THEN (SELECT indrelid FROM pg_index WHERE indexrelid = j.objid)
          WHEN j.classid = 'pg_constraint'::regclass THEN (SELECT conrelid FROM pg_constraint WHERE oid = j.objid)
          WHEN j.classid = 'pg_trigger'::regclass THEN (SELECT tgrelid FROM pg_trigger WHERE oid = j.objid)
          WHEN j.classid = 'pg_rewrite'::regclass THEN (SELECT ev_class FROM pg_rewrite WHERE oid = j.objid)
          WHEN j.classid = 'pg_policy'::regclass THEN (SELECT polrelid FROM pg_policy WHERE oid = j.objid) END) AS parent
  FROM joined j CROSS JOIN LATERAL pg_identify_object(j.classid, j.objid, j.subid) i
 WHERE j.listed
    OR (CASE WHEN j.classid = 'pg_namespace'::regclass THEN i.name ELSE i.schema END) = ANY ($1::text[])
    OR (i.schema IS NULL AND j.classid <> 'pg_namespace'::regclass)]]


-- Settings that change how definitions and row text are printed, and the values they are
-- pinned to while a fingerprint is taken (and jit, which only slows it down).
local PINNED = {
  { "search_path", "pg_catalog" }, { "TimeZone", "UTC" }, { "DateStyle", "ISO, MDY" },
  { "IntervalStyle", "postgres" }, { "extra_float_digits", "1" }, { "bytea_output", "hex" },
  { "lc_monetary", "C" },
  { "jit", "off" },  -- not a printing setting: compiling the catalog queries costs more than running them
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
    s = { tables = {}, constraints = {}, indexes = {}, policies = {}, functions = {}, triggers = {}, rules = {},
          views = {}, matviews = {}, sequences = {}, enums = {}, domains = {} }
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

-- The schemas a fingerprint covers: `schemas`, or every schema but PostgreSQL's own.
local function schemas_to_read(db, schemas)
  if schemas then return schemas end
  local all = {}
  for _, r in ipairs(db:query(USER_SCHEMAS_SQL)) do all[#all + 1] = r.name end
  return all
end

-- Row count and content hash of every table in `qualified` ({ schema, name, quoted name }),
-- a few dozen tables a statement. ONLY: a parent's rows and its children's are counted apart.
local function read_rows(db, fp, qualified)
  local BATCH = 50
  for first = 1, #qualified, BATCH do
    local parts = {}
    for i = first, math.min(first + BATCH - 1, #qualified) do
      parts[#parts + 1] = "SELECT " .. i .. " AS i, count(*) AS n, md5(coalesce(string_agg(h, '' ORDER BY h COLLATE \"C\"), '')) AS hash" ..
                          " FROM (SELECT md5(rb_row.*::text) AS h FROM ONLY " .. qualified[i][3] .. " rb_row) hashes"
    end
    for _, r in ipairs(db:query(table.concat(parts, " UNION ALL "))) do
      local q = qualified[r.i]
      local t = fp.schemas[q[1]].tables[q[2]]
      t.rows, t.hash = r.n, r.hash
    end
  end
end

-- Owners, privileges and comments, keyed "<kind> <identity>" ("database" for this one).
local function read_objects(db, fp, wanted)
  for _, r in ipairs(db:query(OBJECTS_SQL, wanted)) do
    local kind = val(r.kind) or (r.type == "table column" and "column") or r.type
    local key = kind == "database" and "database" or (kind .. " " .. r.identity)
    fp.objects[key] = {
      kind = kind, schema = val(r.schema), identity = kind ~= "database" and r.identity or nil,
      structural = val(r.structural), owner = val(r.owner), privileges = val(r.privileges),
      comment = val(r.comment), parent = val(r.parent),
    }
  end
end

local function read_database(db, fp)
  for _, r in ipairs(db:query(ROLES_SQL)) do
    fp.roles[r.name] = {
      superuser = r.superuser, inherit = r.inherit, create_role = r.create_role, create_db = r.create_db,
      login = r.login, replication = r.replication, bypass_rls = r.bypass_rls, connection_limit = r.connection_limit,
      valid_until = val(r.valid_until), member_of = val(r.member_of), settings = val(r.settings),
    }
  end
  if db:scalar("SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT')") then
    for _, r in ipairs(db:query(PASSWORDS_SQL)) do
      if fp.roles[r.name] then fp.roles[r.name].password = r.password end
    end
  end
  fp.database.settings = val(db:query(DATABASE_SQL)[1].settings)
  for _, r in ipairs(db:query(EXTENSIONS_SQL)) do
    fp.extensions[r.name] = { version = r.version, schema = r.schema }
  end
  for _, r in ipairs(db:query(PUBLICATIONS_SQL)) do
    fp.publications[r.name] = { all_tables = r.all_tables, via_root = r.via_root, publish = r.publish,
                                tables = val(r.tables), schemas = val(r.schemas) }
  end
  for _, r in ipairs(db:query(EVENT_TRIGGERS_SQL)) do
    fp.event_triggers[r.name] = { event = r.event, ["function"] = r["function"], enabled = r.enabled, tags = val(r.tags) }
  end
end

--- Reads the fingerprint of `db` in one snapshot: `schemas` (nil: every schema but PostgreSQL's
--- own), with data (row counts, content hashes, sequence positions) when `data`.
function catalog.read(db, schemas, data)
  return on_snapshot(db, function()
    local fp = { version = 2, data = data, schemas = {}, roles = {}, database = {}, extensions = {},
                 publications = {}, event_triggers = {}, objects = {} }
    local wanted = sql_array(schemas_to_read(db, schemas))

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
    for _, r in ipairs(db:query(RULES_SQL, wanted)) do
      put2(schema_of(fp, r.schema).rules, r.table_name, r.name, { definition = r.definition, enabled = r.enabled })
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
    read_database(db, fp)
    read_objects(db, fp, wanted)
    if data then read_rows(db, fp, qualified) end

    fp.digest = db:scalar("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", table.concat(serialize(fp, {})))
    return fp
  end)
end

return catalog
