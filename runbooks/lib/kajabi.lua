-- The LEAPS tracker's Kajabi event processing (seed 004's processKajabiEvent) in SQL, for the
-- troubleshoot.* playbooks that reprocess events: match the user by email (case-insensitively),
-- credit the LEARN points once per event (points_ledger.external_event_id), mark the event
-- processed with the user id or NO_USER_FOUND. Events without an email stay unprocessed, as
-- the application leaves them. Every change is recorded in a rowbackup table first.
--   local kajabi = require "kajabi"
--   kajabi.process(ctx, "troubleshoot_backup", "t.processed_at IS NULL")
local rowbackup = require "rowbackup"

local kajabi = {}

--- Events of kajabi_events t matching `where` (the runbook's constant) are processed; returns
--- { events, matched, no_user, credited }.
function kajabi.process(ctx, backup, where)
  local events = "SELECT t.id, u.id AS user_id FROM kajabi_events t "
              .. "LEFT JOIN users u ON lower(u.email) = lower(t.payload->>'email') "
              .. "WHERE t.payload->>'email' IS NOT NULL AND (" .. where .. ")"
  rowbackup.save(ctx, backup, "kajabi_events", "t.id IN (SELECT id FROM (" .. events .. ") e)")
  local ids = {}
  for _, r in ipairs(ctx.db:query([[
      INSERT INTO points_ledger (user_id, activity_code, source, delta_points, external_source, external_event_id)
      SELECT e.user_id, 'LEARN', 'WEBHOOK', (SELECT default_points FROM activities WHERE code = 'LEARN'), 'kajabi', e.id
      FROM (]] .. events .. [[) e
      WHERE e.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM points_ledger p WHERE p.external_event_id = e.id)
      RETURNING id]])) do
    ids[#ids + 1] = r.id
  end
  rowbackup.inserted(ctx, backup, "points_ledger", "t.id = ANY($1::text[])", db.array(ids))
  local marked = ctx.db:query([[
      UPDATE kajabi_events k SET processed_at = now(), user_match = coalesce(e.user_id, 'NO_USER_FOUND')
      FROM (]] .. events .. [[) e WHERE k.id = e.id
      RETURNING k.id, k.user_match]])
  local matched = 0
  for _, m in ipairs(marked) do
    if m.user_match ~= "NO_USER_FOUND" then matched = matched + 1 end
  end
  return { events = #marked, matched = matched, no_user = #marked - matched, credited = #ids, details = marked }
end

return kajabi
