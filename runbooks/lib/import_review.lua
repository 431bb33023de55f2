-- What the weekly and monthly reviews of the organizations import fix share (seed 003, "Long-term
-- Monitoring"): the constraint health check, the timed baseline query, and the report.
--   local review = require "import_review"
-- Findings are collected per run in `review.findings` and sent by review.send().
local review = { findings = {} }

review.EXACT = "organizations_exact_name_type_active"
review.CASELESS = "unique_organization_name_type_ci"

local function finding(text) review.findings[#review.findings + 1] = text end
review.finding = finding

--- The plan's check_organizations_constraints(): both unique indexes exist, valid and unique,
--- and no active organizations share a name and type (case-insensitively). Fails when not.
function review.constraint_health(ctx)
  local rows = ctx.db:query([[
    SELECT 'exact_match' AS constraint_type,
           EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                   WHERE c.relname = $1 AND i.indisvalid AND i.indisunique) AS constraint_exists, 0 AS violation_count
    UNION ALL
    SELECT 'case_insensitive',
           EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                   WHERE c.relname = $2 AND i.indisvalid AND i.indisunique), 0
    UNION ALL
    SELECT 'data_integrity', true,
           (SELECT count(*) FROM (SELECT 1 FROM organizations WHERE deleted_at IS NULL
                                  GROUP BY lower(trim(name)), type HAVING count(*) > 1) d)::int]],
    review.EXACT, review.CASELESS)
  audit.note("constraint health", { checks = rows })
  local broken = {}
  for _, r in ipairs(rows) do
    if not r.constraint_exists then broken[#broken + 1] = r.constraint_type .. " index missing or invalid" end
    if r.violation_count > 0 then broken[#broken + 1] = r.violation_count .. " duplicate groups" end
  end
  if #broken > 0 then finding("constraints: " .. table.concat(broken, ", ")) end
  check(#broken == 0, "the import fix's constraints are not healthy: %s", table.concat(broken, ", "))
  return { checks = #rows }
end

--- The plan's baseline query timed `runs` times (the median counts), against `baseline_ms`
--- (0: nothing to compare with). A slowdown over `tolerance` is a finding.
function review.performance(ctx, baseline_ms, tolerance, runs)
  local times = {}
  for i = 1, runs do
    local plan = ctx.db:scalar([[EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT count(*) FROM organizations
                                 WHERE name ILIKE 'test%' AND type = 'customer' AND deleted_at IS NULL]])
    times[i] = plan[1]["Execution Time"]
  end
  table.sort(times)
  local now_ms = times[math.floor((runs + 1) / 2)]
  local result = { query_ms = now_ms, baseline_ms = baseline_ms, runs = runs }
  if baseline_ms > 0 then
    result.change = (now_ms - baseline_ms) / baseline_ms
    result.degraded = result.change > tolerance
    if result.degraded then
      finding(string.format("the baseline query is %.0f%% slower than before the migration (%.3f ms, was %.3f ms)",
                            result.change * 100, now_ms, baseline_ms))
    end
  end
  audit.note("performance", result)
  return result
end

--- Sends the review's summary on the config's default channels (a warning when there are
--- findings); without channels it is logged, saying why.
function review.send(ctx, kind)
  local text
  if #review.findings == 0 then
    text = string.format("Organizations import fix, %s review: no findings", kind)
  else
    text = string.format("Organizations import fix, %s review: %d finding(s): %s", kind, #review.findings,
                         table.concat(review.findings, "; "))
  end
  audit.note(kind .. " review", { findings = review.findings })
  local ok, err = pcall(alert.send, { severity = #review.findings == 0 and "info" or "warning", summary = text })
  if not ok then ctx.log(text .. "\n(not sent: " .. tostring(err) .. ")") end
  return { findings = #review.findings }
end

return review
