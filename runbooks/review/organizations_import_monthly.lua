-- Seed 003 (Organizations Import Fix - Monitoring & Rollback Plan), "Long-term Monitoring (30
-- days)", Monthly Optimization Review, on the 1st at 06:00 UTC under `runbook schedule`: index
-- usage statistics (the plan's pg_stat_user_indexes query), query performance analysis (the
-- plan's baseline query and the importer's ON CONFLICT lookup: their plans and whether an index
-- serves them), a constraint effectiveness review (the last 30 days of import_monitoring: no
-- 42P10 any more, the duplicates the indexes refused (23505), none in the table), and the
-- additional optimizations worth considering (unused indexes, soft-deleted rows).
-- Read-only: a report in the audit (notes), sent on the config's default channels. A broken
-- constraint fails the run; everything else is a finding.
local review = require "import_review"

runbook "review.organizations_import_monthly" {
  title = "Monthly optimization review of the organizations import fix",
  tags = { "review", "monthly", "seed-003" },
  fixture = "organizations_import.sql",
  schedule = { cron = "0 6 1 * *", tz = "UTC", missed = "once" },
  params = {
    days = { type = "integer", default = 30, doc = "how many days of imports the review covers" },
  },

  step "index usage statistics" {
    run = function(ctx)
      local indexes = ctx.db:query([[
        SELECT schemaname, relname AS tablename, indexrelname AS indexname, idx_tup_read, idx_tup_fetch, idx_scan,
               pg_relation_size(s.indexrelid)::float8 AS bytes, x.indisunique AS is_unique
        FROM pg_stat_user_indexes s JOIN pg_index x ON x.indexrelid = s.indexrelid
        WHERE relname = 'organizations' ORDER BY idx_scan DESC, indexrelname]])
      audit.note("index usage statistics", { indexes = indexes })
      local unused = {}
      for _, i in ipairs(indexes) do
        if i.idx_scan == 0 and not i.is_unique then unused[#unused + 1] = i.indexname end
      end
      if #unused > 0 then
        review.finding("indexes on organizations never scanned since the statistics were reset: "
                       .. table.concat(unused, ", ") .. " (consider dropping them)")
      end
      return { indexes = #indexes, unused = unused }
    end,
  },
  step "query performance analysis" {
    run = function(ctx)
      local search = ctx.db:explain([[SELECT count(*) FROM organizations
                                      WHERE name ILIKE 'test%' AND type = 'customer' AND deleted_at IS NULL]])
      local lookup = ctx.db:explain([[SELECT id FROM organizations
                                      WHERE lower(trim(name)) = lower(trim($1)) AND type = $2 AND deleted_at IS NULL]],
                                    "Organization 1", "partner")
      local r = { search = { uses_index = search.uses_index, indexes = search.indexes, seq_scan = search.seq_scan },
                  importer_lookup = { uses_index = lookup.uses_index, indexes = lookup.indexes, seq_scan = lookup.seq_scan } }
      audit.note("query plans", r)
      return r
    end,
  },
  step "constraint health" {
    run = function(ctx) return review.constraint_health(ctx) end,
  },
  step "constraint effectiveness" {
    run = function(ctx)
      local r = ctx.db:query([[
        SELECT count(*) FILTER (WHERE error_code = '42P10') AS errors_42p10,
               count(*) FILTER (WHERE error_code = '23505') AS duplicates_refused,
               count(*) FILTER (WHERE error_code = '42P01') AS errors_42p01,
               count(*) AS batches,
               coalesce(sum(records_successful)::float8 / nullif(sum(records_attempted), 0), 1) AS success_rate
        FROM import_monitoring WHERE operation_start >= localtimestamp - $1::int * interval '1 day']], ctx.params.days)[1]
      audit.note("constraint effectiveness", r)
      if r.errors_42p10 > 0 then
        review.finding(r.errors_42p10 .. " import batches still failed with 42P10 (ON CONFLICT without a matching constraint)")
      end
      if r.errors_42p01 > 0 then review.finding(r.errors_42p01 .. " import batches failed with 42P01 (table or constraint not found)") end
      return r
    end,
  },
  step "optimizations to consider" {
    run = function(ctx)
      local r = ctx.db:query([[
        SELECT count(*) FILTER (WHERE deleted_at IS NOT NULL) AS soft_deleted, count(*) AS total,
               pg_total_relation_size('organizations')::float8 AS total_bytes,
               pg_indexes_size('organizations')::float8 AS index_bytes
        FROM organizations]])[1]
      local ideas = {}
      if r.total > 0 and r.soft_deleted / r.total > 0.5 then
        ideas[#ideas + 1] = "more than half of organizations are soft-deleted: archive them"
      end
      if r.total_bytes > 0 and r.index_bytes / r.total_bytes > 0.7 then
        ideas[#ideas + 1] = "indexes are most of the table's size: review them"
      end
      for _, i in ipairs(ideas) do review.finding(i) end
      r.ideas = ideas
      audit.note("optimizations to consider", r)
      return r
    end,
  },
  step "report" {
    run = function(ctx) return review.send(ctx, "monthly") end,
  },
}
