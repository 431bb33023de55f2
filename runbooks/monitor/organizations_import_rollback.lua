-- Seed 003 (Organizations Import Fix - Monitoring & Rollback Plan), "Rollback Execution Plan",
-- Phase 4: Post-Rollback Monitoring (24 hours), after migration.organizations_import_fix was
-- rolled back (by its decision tree, a failed step, or `runbook rollback RUN`):
--  * the rollback held: neither unique index is back (phase 2's "Rollback Status" check) and
--    imports are enabled again (phase 3);
--  * "Confirm no data corruption occurred": without the unique indexes nothing stops the
--    importer writing duplicates (the plan's data_integrity check, case-insensitive);
--  * "Verify error logs show return of 42P10 errors": expected until the re-deployment, said
--    once; the plan's other critical errors (23505, 42P01) are not expected and escalate;
--  * "Plan re-deployment with fixes": the summary at the end says what the 24 hours showed.
-- Read-only. Run it right after the rollback:
--   runbook run monitor.organizations_import_rollback [--param watch_for=24h --param every=5m]
-- Alerts go to the config's default channels; escalations to its (default) escalation policy.
local NAME = "Organizations Import Fix"
local EXACT = "organizations_exact_name_type_active"
local CASELESS = "unique_organization_name_type_ci"

local DUPLICATES = [[SELECT count(*) FROM (SELECT 1 FROM organizations WHERE deleted_at IS NULL
                     GROUP BY lower(trim(name)), type HAVING count(*) > 1) d]]

runbook "monitor.organizations_import_rollback" {
  title = "24 hours of watching organizations after the import fix was rolled back",
  tags = { "monitor", "seed-003" },
  fixture = "organizations_import_rollback.sql",
  params = {
    watch_for = { type = "duration", default = "24h", doc = "how long to watch" },
    every = { type = "duration", default = "5m", doc = "how often to sample" },
  },

  watch "post-rollback" {
    every = function(ctx) return ctx.params.every end, lasting = function(ctx) return ctx.params.watch_for end,
    metrics = {
      constraints_left = [[SELECT count(*) FROM pg_indexes WHERE tablename = 'organizations'
                           AND indexname IN (']] .. EXACT .. "', '" .. CASELESS .. [[')]],
      imports_enabled = [[SELECT import_enabled FROM system_settings WHERE setting_key = 'import_config']],
      duplicates = DUPLICATES,
      -- the importer's errors over the last 15 minutes
      errors_42p10 = [[SELECT count(*) FROM import_monitoring
                       WHERE operation_start > localtimestamp - interval '15 minutes' AND error_code = '42P10']],
      unexpected_errors = [[SELECT count(*) FROM import_monitoring
                            WHERE operation_start > localtimestamp - interval '15 minutes' AND error_code IN ('23505', '42P01')]],
    },
    trigger "rollback incomplete" { when = "constraints_left > 0", clear_when = "constraints_left == 0",
      action = escalate { level = 2, severity = "critical", cause = "rollback incomplete",
                          summary = NAME .. ": Rollback Status FAILED - a unique index of the fix still exists" } },
    trigger "data corruption" { when = "duplicates > 0", clear_when = "duplicates == 0",
      action = escalate { level = 2, severity = "error", cause = "duplicate organizations",
                          summary = NAME .. ": active organizations share a name and type since the rollback "
                                 .. "(runbook run troubleshoot.duplicates)" } },
    trigger "unexpected import errors" { when = "unexpected_errors > 0", clear_when = "unexpected_errors == 0",
      action = escalate { level = 2, severity = "error", cause = "unexpected import errors",
                          summary = NAME .. ": imports fail with 23505 or 42P01 after the rollback" } },
    trigger "imports still blocked" { when = "not imports_enabled", sustained = "10m", clear_when = "imports_enabled",
      action = alert { severity = "error",
                       summary = NAME .. ": imports are still disabled 10 minutes after the rollback (phase 3: re-enable them)" } },
    trigger "42P10 is back" { when = "errors_42p10 > 0", clear_when = "errors_42p10 == 0",
      action = alert { severity = "info",
                       summary = NAME .. ": imports show 42P10 errors again, as expected until the re-deployment" } },
  },

  phase "summary" {
    step "re-deployment notes" {
      run = function(ctx)
        local s = ctx.db:query([[
          SELECT (SELECT count(*) FROM import_monitoring WHERE operation_start > localtimestamp - $1::float8 * interval '1 second'
                    AND error_code = '42P10') AS errors_42p10,
                 (SELECT count(*) FROM import_monitoring WHERE operation_start > localtimestamp - $1::float8 * interval '1 second'
                    AND error_code IN ('23505', '42P01')) AS unexpected_errors,
                 (SELECT coalesce(sum(records_successful)::float8 / nullif(sum(records_attempted), 0), 1)
                    FROM import_monitoring WHERE operation_start > localtimestamp - $1::float8 * interval '1 second') AS success_rate,
                 (]] .. DUPLICATES .. [[) AS duplicates,
                 (SELECT count(*) FROM pg_indexes WHERE tablename = 'organizations'
                    AND indexname IN ($2, $3)) AS constraints_left]], ctx.params.watch_for, EXACT, CASELESS)[1]
        audit.note("post-rollback monitoring", s)
        local ok = s.duplicates == 0 and s.constraints_left == 0 and s.unexpected_errors == 0
        local text = string.format("%s: post-rollback monitoring done. 42P10 errors: %d (expected until the fix is "
          .. "re-deployed); unexpected errors: %d; success rate %.1f%%; duplicates: %d; indexes left: %d. %s",
          NAME, s.errors_42p10, s.unexpected_errors, s.success_rate * 100, s.duplicates, s.constraints_left,
          ok and "No data corruption: plan the re-deployment with the fixes."
             or "Resolve the findings above before re-deploying.")
        local sent, err = pcall(alert.send, { severity = ok and "info" or "error", summary = text })
        if not sent then ctx.log(text .. "\n(not sent: " .. tostring(err) .. ")") end
        check(ok, "%s", text)
        return s
      end,
    },
  },
}
