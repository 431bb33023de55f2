-- Seed 000: migrate the Slack bot to the centralized schema. Pre-flight validation, one
-- transaction with a savepoint per step, per-step validation, a migration_log record per step,
-- post-migration health checks, and compensation (rollback) handlers for every step.
local function log_step(ctx, status, records, message)
  ctx.db:exec([[INSERT INTO migration_log (step_name, status, message, records_affected)
                VALUES ($1, $2, $3, $4)]], ctx.step, status, message or db.null, records or db.null)
end

-- After rows were deleted: set the table's id sequence back to its highest id (or unused when
-- the table is empty), so that a rehearsal finds the database exactly as it was.
local function rewind_ids(ctx, tbl)  -- tbl is one of our table names, never input
  ctx.db:exec(string.format([[SELECT CASE WHEN max(id) IS NULL THEN setval(pg_get_serial_sequence('%s', 'id'), 1, false)
                                          ELSE setval(pg_get_serial_sequence('%s', 'id'), max(id)) END
                              FROM %s]], tbl, tbl, tbl))
end

-- A rollback handler's half of log_step: drop this step's log rows and rewind the log's ids.
local function unlog_step(ctx)
  ctx.db:exec("DELETE FROM migration_log WHERE step_name = $1", ctx.step)
  rewind_ids(ctx, "migration_log")
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
  params = {
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
            records_affected INTEGER, created_at TIMESTAMPTZ DEFAULT now())]])
      end,
    },
  },

  phase "migrate" {
    transaction = true,
    step "users" {
      run = function(ctx)
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
        log_step(ctx, "SUCCESS", n, "Migrated users")
        return { users = n }
      end,
      verify = function(ctx, result)
        check(result.users > 0, "no users migrated")
        check(count(ctx, [[SELECT count(*) FROM (SELECT 1 FROM users GROUP BY platform, platform_user_id
                            HAVING count(*) > 1) d]]) == 0, "duplicate users")
      end,
      rollback = function(ctx)
        ctx.db:exec("DELETE FROM users WHERE platform_metadata->>'migrated_from_reactions' = 'true'")
        rewind_ids(ctx, "users")
        unlog_step(ctx)
      end,
    },
    step "conversation owners" {
      run = function(ctx)
        local n = ctx.db:exec([[
          UPDATE conversations c SET user_id = coalesce(
            (SELECT u.id FROM messages m JOIN users u ON u.platform = 'slack' AND u.platform_user_id = m.slack_user_id
              WHERE m.conversation_id = c.id ORDER BY m.created_at LIMIT 1),
            (SELECT id FROM users WHERE platform = 'slack' AND platform_user_id = 'MIGRATION_UNKNOWN_USER'))]])
        log_step(ctx, "SUCCESS", n, "Linked conversations to users")
        return { conversations = n }
      end,
      verify = function(ctx)
        local orphans = count(ctx, [[SELECT count(*) FROM conversations c
                                      LEFT JOIN users u ON c.user_id = u.id WHERE u.id IS NULL]])
        check(orphans == 0, "found %d conversations without valid users", orphans)
      end,
      rollback = function(ctx)
        ctx.db:exec("UPDATE conversations SET user_id = NULL")
        unlog_step(ctx)
      end,
    },
    step "user queries" {
      run = function(ctx)
        local n = ctx.db:exec([[
          INSERT INTO user_queries (id, conversation_id, user_id, content, created_at)
          SELECT m.id, m.conversation_id, c.user_id, m.content, m.created_at
          FROM messages m JOIN conversations c ON c.id = m.conversation_id
          WHERE m.message_type = 'user_query']])
        log_step(ctx, "SUCCESS", n, "Migrated user queries")
        return { queries = n }
      end,
      rollback = function(ctx)
        ctx.db:exec("DELETE FROM user_queries")
        unlog_step(ctx)
      end,
    },
    step "bot responses" {
      run = function(ctx)
        local n = ctx.db:exec([[
          INSERT INTO bot_responses (id, conversation_id, content, error_message, created_at)
          SELECT id, conversation_id, content, error_message, created_at
          FROM messages WHERE message_type = 'bot_response']])
        log_step(ctx, "SUCCESS", n, "Migrated bot responses")
        return { responses = n }
      end,
      verify = function(ctx)
        local q = count(ctx, "SELECT count(*) FROM user_queries")
        local r = count(ctx, "SELECT count(*) FROM bot_responses")
        if math.abs(q - r) > q * 0.1 then
          ctx.log(string.format("WARN query/response balance: %d queries, %d responses", q, r))
        end
      end,
      rollback = function(ctx)
        ctx.db:exec("DELETE FROM bot_responses")
        unlog_step(ctx)
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
          check(row.n == 0, "%d %s were not migrated", row.n, row.kind)
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
