-- Seed 000 (Error Handling Guide & Rollback Procedures), "Common Issues and Solutions" 4.
-- Migration Data Loss: the reconciliation query finds user queries and bot responses that
-- migration.centralized did not carry over, and the migration is re-run for those rows only,
-- in one transaction that commits only when nothing is missing any more. The rows it inserts are
-- recorded in reconcile_backup (stdlib rowbackup), so that undoing the run (`runbook rollback`,
-- `rehearse`) deletes exactly those and nothing that was there before.
local rowbackup = require "rowbackup"
local BACKUP = "reconcile_backup"
local MISSING = [[
  SELECT 'Missing queries' AS issue_type, count(*) AS count
  FROM messages m LEFT JOIN user_queries uq ON m.id = uq.id
  WHERE m.message_type = 'user_query' AND uq.id IS NULL
  UNION ALL
  SELECT 'Missing responses', count(*)
  FROM messages m LEFT JOIN bot_responses br ON m.id = br.id
  WHERE m.message_type = 'bot_response' AND br.id IS NULL]]

local function missing(ctx)
  local out = {}
  for _, row in ipairs(ctx.db:query(MISSING)) do out[row.issue_type] = row.count end
  return out
end

local function nothing_missing(ctx, what)
  local n = missing(ctx)[what]
  check(n == 0, "%s: %d left after the re-migration", what, n)
end

-- Runs the INSERT ... RETURNING id and records the inserted rows; returns how many.
local function insert_recorded(ctx, tbl, sql)
  rowbackup.create(ctx, BACKUP)
  local ids = {}
  for _, r in ipairs(ctx.db:query(sql)) do ids[#ids + 1] = tostring(r.id) end
  local recorded = rowbackup.inserted(ctx, BACKUP, tbl, "id::text = ANY($1::text[])", db.array(ids))
  check(recorded == #ids, "inserted %d rows into %s but recorded %d", #ids, tbl, recorded)
  return #ids
end

runbook "migration.centralized_reconcile" {
  title = "Re-migrate queries and responses the centralized migration missed",
  tags = { "migration", "seed-000" },
  fixture = "centralized_reconcile.sql",
  lock = true,
  log_tables = { BACKUP },  -- the record of what a run inserted; kept (rehearse notes it)

  phase "reconciliation" {
    step "find missing data" {
      run = function(ctx)
        local found = missing(ctx)
        audit.note("missing data", found)
        return found
      end,
    },
  },

  phase "re-migrate" {
    transaction = true,
    step "missing queries" {
      run = function(ctx)
        return { inserted = insert_recorded(ctx, "user_queries", [[
          INSERT INTO user_queries (id, conversation_id, user_id, content, created_at)
          SELECT m.id, m.conversation_id, c.user_id, m.content, m.created_at
          FROM messages m
          JOIN conversations c ON m.conversation_id = c.id
          LEFT JOIN user_queries uq ON m.id = uq.id
          WHERE m.message_type = 'user_query' AND uq.id IS NULL
          RETURNING id]]) }
      end,
      verify = function(ctx) nothing_missing(ctx, "Missing queries") end,
      rollback = function(ctx) rowbackup.restore(ctx, BACKUP, "user_queries") end,
    },
    step "missing responses" {
      run = function(ctx)
        return { inserted = insert_recorded(ctx, "bot_responses", [[
          INSERT INTO bot_responses (id, conversation_id, content, error_message, created_at)
          SELECT m.id, m.conversation_id, m.content, m.error_message, m.created_at
          FROM messages m
          LEFT JOIN bot_responses br ON m.id = br.id
          WHERE m.message_type = 'bot_response' AND br.id IS NULL
          RETURNING id]]) }
      end,
      verify = function(ctx) nothing_missing(ctx, "Missing responses") end,
      rollback = function(ctx) rowbackup.restore(ctx, BACKUP, "bot_responses") end,
    },
  },
}
