-- Seed 000: migrate the Slack bot to the centralized schema. Pre-flight validation, the backups
-- ("Database Backup Strategy": full, and data-only of the critical tables, both verified by a
-- restore), one transaction with a savepoint per step, per-step validation, the seed's
-- migration_log (START, SUCCESS / ERROR with timings and error details, ROLLBACK), the
-- timeline index ("Performance Issues"), post-migration checks, and compensation (rollback)
-- handlers for every step. The complete rollback from the backup is
-- migration.centralized_restore; re-migrating rows found missing, migration.centralized_reconcile;
-- the health function and the error-rate watch with its escalation, monitor.centralized.
local backup = require "backup"
local health = require "health"

local CRITICAL = { "messages", "conversations", "message_reactions" }

-- "Error Logging and Recovery": log_migration_step(). Rows go in on a connection of their own,
-- so an ERROR or ROLLBACK row outlives the migration's transaction when that is rolled back.
local function log_step(ctx, status, f)
  f = f or {}
  local c = db.connect()
  c:exec([[INSERT INTO migration_log (step_name, status, message, error_details, records_affected, execution_time_ms)
           VALUES ($1, $2, $3, $4::jsonb, $5,
                   CASE WHEN $6::float8 IS NULL THEN NULL ELSE round((extract(epoch FROM clock_timestamp()) - $6::float8) * 1000) END)]],
         ctx.step, status, f.message or db.null, f.error or db.null, f.records or db.null, f.t0 or db.null)
  c:close()
end

-- The error's fields as the seed's error_details: sqlstate, error_message, error_detail.
local function error_details(err)
  if type(err) ~= "table" then return { error_message = tostring(err) } end
  return { sqlstate = err.sqlstate, error_message = err.message or tostring(err), error_detail = err.detail,
           hint = err.hint, class = err.class }
end

-- A step's run, logged as the seed's example does: START, then SUCCESS with the rows it returned
-- (`records`) and the time it took, or ERROR with the error's details -- and the error goes on.
local function logged(message, fn)
  return function(ctx)
    local t0 = ctx.db:scalar("SELECT extract(epoch FROM clock_timestamp())::float8")
    log_step(ctx, "START", { message = "Beginning " .. message })
    local ok, result = pcall(fn, ctx)
    if ok then
      log_step(ctx, "SUCCESS", { message = message .. " completed", records = result.records, t0 = t0 })
      return result
    end
    log_step(ctx, "ERROR", { message = message .. " failed: " .. tostring(type(result) == "table" and result.message or result),
                             error = error_details(result), records = 0, t0 = t0 })
    error(result, 0)
  end
end

-- A step's verify: a failed validation is an ERROR row too.
local function logged_verify(fn)
  return function(ctx, result)
    local ok, err = pcall(fn, ctx, result)
    if ok then return end
    log_step(ctx, "ERROR", { message = "Validation failed: " .. tostring(type(err) == "table" and err.message or err),
                             error = error_details(err) })
    error(err, 0)
  end
end

-- After rows were deleted: set the table's id sequence back to its highest id (or unused when
-- the table is empty), so that a rehearsal finds the database exactly as it was.
local function rewind_ids(ctx, tbl)  -- tbl is one of our table names, never input
  ctx.db:exec(string.format([[SELECT CASE WHEN max(id) IS NULL THEN setval(pg_get_serial_sequence('%s', 'id'), 1, false)
                                          ELSE setval(pg_get_serial_sequence('%s', 'id'), max(id)) END
                              FROM %s]], tbl, tbl, tbl))
end

local function count(ctx, sql, ...)
  return ctx.db:scalar(sql, ...)
end

runbook "migration.centralized" {
  title = "Migrate the Slack bot to the centralized schema",
  description = "Moves users, conversations, queries and responses from the old Slack tables into "
             .. "users / user_queries / bot_responses, validating every step.",
  tags = { "migration", "seed-000" },
  fixture = "centralized.sql",
  lock = true,
  -- migration_log is the seed's history of what happened: undoing the migration keeps it (and
  -- adds its ROLLBACK rows), so `rehearse` notes its new rows instead of counting them.
  log_tables = { "migration_log" },
  params = {
    backup_dir     = { type = "string", default = "backups", doc = "where the backups go (relative: to the working directory)" },
    max_error_rate = { type = "number", default = 0.25, doc = "largest share of failed bot responses accepted afterwards" },
  },

  phase "preflight" {
    step "old tables exist" {
      run = function(ctx)
        for _, t in ipairs { "messages", "conversations", "message_reactions" } do
          check(count(ctx, [[SELECT count(*) FROM information_schema.tables
                              WHERE table_schema = 'public' AND table_name = $1]], t) == 1,
                "Migration Error: old %s table not found", t)
        end
      end,
    },
    step "messages has its columns" {
      run = function(ctx)
        local n = count(ctx, [[SELECT count(*) FROM information_schema.columns
                                WHERE table_schema = 'public' AND table_name = 'messages']])
        check(n >= 8, "Migration Error: messages table missing expected columns (%d of 8)", n)
        return { columns = n }
      end,
    },
    step "new tables are empty" {
      run = function(ctx)
        for _, t in ipairs { "users", "user_queries", "bot_responses" } do
          local n = count(ctx, "SELECT count(*) FROM " .. t)  -- table names are ours, not input
          check(n == 0, "%s already holds %d rows: was this migration run before?", t, n)
        end
      end,
    },
    step "migration log" {
      run = function(ctx)
        ctx.db:exec([[CREATE TABLE IF NOT EXISTS migration_log (
            id SERIAL PRIMARY KEY, step_name TEXT NOT NULL, status TEXT NOT NULL, message TEXT,
            error_details JSONB, records_affected INTEGER, execution_time_ms INTEGER,
            created_at TIMESTAMPTZ DEFAULT now())]])
        ctx.db:exec([[ALTER TABLE migration_log ADD COLUMN IF NOT EXISTS error_details JSONB,
                                                ADD COLUMN IF NOT EXISTS execution_time_ms INTEGER]])
      end,
    },
  },

  -- "Database Backup Strategy": a full backup and a data-only one of the critical tables, each
  -- restored into a throwaway PostgreSQL to prove it (row counts compared). The step results
  -- name the files: migration.centralized_restore takes one of them.
  phase "backup" {
    step "full backup" {
      run = function(ctx)
        local b = backup.dump(ctx, { dir = ctx.params.backup_dir, name = "before_centralized" })
        backup.verify(ctx, b)
        return b
      end,
    },
    step "critical data backup" {
      run = function(ctx)
        local b = backup.dump(ctx, { dir = ctx.params.backup_dir, name = "critical_data", tables = CRITICAL, data_only = true })
        backup.verify(ctx, b)
        return b
      end,
    },
  },

  phase "migrate" {
    transaction = true,
    step "users" {
      run = logged("user migration", function(ctx)
        local n = ctx.db:exec([[
          INSERT INTO users (platform, platform_user_id, username, display_name, platform_metadata)
          SELECT DISTINCT 'slack'::platform_type, u, u, u, jsonb_build_object('migrated_from_reactions', true)
          FROM (SELECT slack_user_id AS u FROM message_reactions
                UNION SELECT slack_user_id FROM messages) s
          WHERE u IS NOT NULL
          ON CONFLICT (platform, platform_user_id) DO NOTHING]])
        ctx.db:exec([[INSERT INTO users (platform, platform_user_id, display_name, platform_metadata)
                      VALUES ('slack', 'MIGRATION_UNKNOWN_USER', 'Unknown (migrated)',
                              '{"migrated_from_reactions": true}')
                      ON CONFLICT (platform, platform_user_id) DO NOTHING]])
        return { users = n, records = n }
      end),
      verify = logged_verify(function(ctx, result)
        check(result.users > 0, "no users migrated")
        check(count(ctx, [[SELECT count(*) FROM (SELECT 1 FROM users GROUP BY platform, platform_user_id
                            HAVING count(*) > 1) d]]) == 0, "duplicate users")
      end),
      rollback = function(ctx)
        local n = ctx.db:exec("DELETE FROM users WHERE platform_metadata->>'migrated_from_reactions' = 'true'")
        rewind_ids(ctx, "users")
        log_step(ctx, "ROLLBACK", { message = "Migrated users deleted", records = n })
      end,
    },
    step "conversation owners" {
      run = logged("conversation owners", function(ctx)
        local n = ctx.db:exec([[
          UPDATE conversations c SET user_id = coalesce(
            (SELECT u.id FROM messages m JOIN users u ON u.platform = 'slack' AND u.platform_user_id = m.slack_user_id
              WHERE m.conversation_id = c.id ORDER BY m.created_at LIMIT 1),
            (SELECT id FROM users WHERE platform = 'slack' AND platform_user_id = 'MIGRATION_UNKNOWN_USER'))]])
        return { conversations = n, records = n }
      end),
      verify = logged_verify(function(ctx)
        local orphans = count(ctx, [[SELECT count(*) FROM conversations c
                                      LEFT JOIN users u ON c.user_id = u.id WHERE u.id IS NULL]])
        check(orphans == 0, "found %d conversations without valid users", orphans)
      end),
      rollback = function(ctx)
        local n = ctx.db:exec("UPDATE conversations SET user_id = NULL")
        log_step(ctx, "ROLLBACK", { message = "Conversation owners unset", records = n })
      end,
    },
    step "user queries" {
      run = logged("user query migration", function(ctx)
        local n = ctx.db:exec([[
          INSERT INTO user_queries (id, conversation_id, user_id, content, created_at)
          SELECT m.id, m.conversation_id, c.user_id, m.content, m.created_at
          FROM messages m JOIN conversations c ON c.id = m.conversation_id
          WHERE m.message_type = 'user_query']])
        return { queries = n, records = n }
      end),
      rollback = function(ctx)
        log_step(ctx, "ROLLBACK", { message = "Migrated user queries deleted", records = ctx.db:exec("DELETE FROM user_queries") })
      end,
    },
    step "bot responses" {
      run = logged("bot response migration", function(ctx)
        local n = ctx.db:exec([[
          INSERT INTO bot_responses (id, conversation_id, content, error_message, created_at)
          SELECT id, conversation_id, content, error_message, created_at
          FROM messages WHERE message_type = 'bot_response']])
        return { responses = n, records = n }
      end),
      verify = function(ctx)
        local q = count(ctx, "SELECT count(*) FROM user_queries")
        local r = count(ctx, "SELECT count(*) FROM bot_responses")
        if math.abs(q - r) > q * 0.1 then
          ctx.log(string.format("WARN query/response balance: %d queries, %d responses", q, r))
        end
      end,
      rollback = function(ctx)
        log_step(ctx, "ROLLBACK", { message = "Migrated bot responses deleted", records = ctx.db:exec("DELETE FROM bot_responses") })
      end,
    },
  },

  -- "Performance Issues": the conversation timeline index, built without blocking writes
  -- (outside the transaction; a failed build's INVALID leftover is dropped).
  phase "indexes" {
    step "idx_conversation_timeline" {
      when = function(ctx)
        if health.index_exists(ctx.db, "idx_conversation_timeline") then return "idx_conversation_timeline already exists" end
        return true
      end,
      run = logged("idx_conversation_timeline", function(ctx)
        local ok, err = pcall(ctx.db.exec, ctx.db,
          "CREATE INDEX CONCURRENTLY idx_conversation_timeline ON user_queries (conversation_id, created_at DESC)")
        if not ok then
          ctx.db:exec("DROP INDEX CONCURRENTLY IF EXISTS idx_conversation_timeline")
          error(err, 0)
        end
        return {}
      end),
      verify = function(ctx)
        check(ctx.db:scalar([[SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_conversation_timeline'::regclass]]),
              "idx_conversation_timeline is not valid")
      end,
      rollback = function(ctx)
        ctx.db:exec("DROP INDEX CONCURRENTLY IF EXISTS idx_conversation_timeline")
        log_step(ctx, "ROLLBACK", { message = "idx_conversation_timeline dropped" })
      end,
    },
  },

  phase "verify" {
    step "nothing lost" {
      run = function(ctx)
        local missing = ctx.db:query([[
          SELECT 'queries' AS kind, count(*) AS n FROM messages m
            LEFT JOIN user_queries q ON q.id = m.id WHERE m.message_type = 'user_query' AND q.id IS NULL
          UNION ALL
          SELECT 'responses', count(*) FROM messages m
            LEFT JOIN bot_responses b ON b.id = m.id WHERE m.message_type = 'bot_response' AND b.id IS NULL]])
        for _, row in ipairs(missing) do
          check(row.n == 0, "%d %s were not migrated (migration.centralized_reconcile re-migrates them)", row.n, row.kind)
        end
      end,
    },
    step "health" {
      run = function(ctx)
        local rate = ctx.db:scalar([[SELECT coalesce(avg((error_message IS NOT NULL)::int), 0)::float8
                                     FROM bot_responses]])
        check(rate <= ctx.params.max_error_rate, "error rate %.1f%% is above %.1f%%",
              rate * 100, ctx.params.max_error_rate * 100)
        audit.note("migration healthy", { error_rate = rate })
      end,
    },
  },
}
