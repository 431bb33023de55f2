-- Seed 004 (Database Troubleshooting Guide), "Migration Problems - Schema Drift Issues": the
-- database no longer has the schema its migrations build ("database has extra columns not in
-- schema", unknown fields, type errors). Builds the expected schema in a throwaway PostgreSQL
-- from a SQL file beside this runbook (`expected`, by default the LEAPS schema, leaps.sql; psql
-- runs it, so \ir works), fingerprints both (stdlib fingerprint, schema only, no data) and says
-- every difference in words. Read-only: the guide's fix is a new migration
-- (`pnpm db:pull`, `pnpm db:migrate:dev --name fix_schema_drift`), written by a person.
-- The run fails when there is drift (fail_on_drift), so it can gate a deploy.
local fingerprint = require "fingerprint"

-- The parts of a fingerprint that belong to the schema: roles, owners and privileges are the
-- cluster's and differ in any throwaway server, so they are left out.
local function schema_only(f)
  return { version = f.version, data = f.data, schemas = f.schemas }
end

runbook "troubleshoot.schema_drift" {
  title = "Schema drift",
  description = "Compares the database's schema with the one its SQL builds, and says what differs.",
  tags = { "troubleshoot", "migration", "seed-004" },
  fixture = "schema_drift.sql",
  params = {
    expected = { type = "string", default = "leaps.sql", doc = "SQL file beside this runbook that builds the expected schema" },
    schema = { type = "string", default = "public", doc = "the schema to compare" },
    fail_on_drift = { type = "boolean", default = true, doc = "fail the run when the schemas differ" },
  },

  step "compare with the expected schema" {
    timeout = "10m",
    run = function(ctx)
      local actual = fingerprint.take(ctx.db, { schemas = { ctx.params.schema }, data = false })
      local scratch = db.sandbox()
      local expected_db = db.connect(scratch:dsn())
      expected_db:psql(ctx.params.expected)
      local expected = fingerprint.take(expected_db, { schemas = { ctx.params.schema }, data = false })
      expected_db:close()
      scratch:close()
      local differences = fingerprint.diff(schema_only(expected), schema_only(actual))
      for _, line in ipairs(differences) do ctx.log("drift: " .. line) end
      audit.note("schema drift", { expected = ctx.params.expected, schema = ctx.params.schema,
                                   count = #differences, differences = differences })
      return { differences = #differences }
    end,
    verify = function(ctx, result)
      if ctx.params.fail_on_drift then
        check(result.differences == 0, "schema %s differs from %s in %d ways (see the 'schema drift' note): "
              .. "write a migration for them (pnpm db:pull, then pnpm db:migrate:dev --name fix_schema_drift)",
              ctx.params.schema, ctx.params.expected, result.differences)
      end
    end,
  },
}
