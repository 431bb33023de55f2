-- Seed 002 (Critical Fixes Migration Guide), phase 1: the database side of the conversation
-- sync fix -- optimistic locking (a version column, skipped when it already exists, as step
-- 1.3 says), unique indexes against duplicate events, sync state and per-page sync locks, and
-- the sync's RPC functions; then the guide's four verification queries (step 1.2), a test of
-- the sync lock and of duplicate-free upserts (5.1, 5.4), and its rollback plan (step 2) as
-- the rollback handlers.
local FUNCTIONS = { "acquire_sync_lock", "release_sync_lock", "upsert_conversation_with_events",
                    "bulk_upsert_conversations_with_events" }

local function count(ctx, sql, ...) return ctx.db:scalar(sql, ...) end

--- A `when` that skips a step on a re-run, when all `expected` of its objects are there (the
--- reason is audited with the skip); a partial set runs the step, which then fails on the
--- object that exists, naming it: a half-applied earlier attempt is for a person to look at.
local function unless_present(what, expected, sql)
  return function(ctx)
    if count(ctx, sql) == expected then return what .. " already exist (the migration ran here before)" end
    return true
  end
end

runbook "migration.critical_fixes" {
  title = "Critical fixes for the conversation sync",
  description = "Adds optimistic locking, duplicate-proof events, sync state, sync locks and atomic "
             .. "upsert functions to the Messenger inbox schema.",
  tags = { "migration", "seed-002" },
  fixture = "critical_fixes.sql",
  lock = true,

  phase "preflight" {
    step "tables exist" {
      run = function(ctx)
        for _, t in ipairs { "messenger_conversations", "contact_interaction_events" } do
          check(ctx.db:scalar("SELECT to_regclass($1) IS NOT NULL", t), "table %s not found", t)
        end
      end,
    },
    step "no duplicate events" {
      -- The unique indexes below cannot be built over duplicates: say so before starting.
      run = function(ctx)
        local by_message = count(ctx, [[SELECT count(*) FROM (SELECT 1 FROM contact_interaction_events
            WHERE message_id IS NOT NULL GROUP BY conversation_id, message_id HAVING count(*) > 1) d]])
        local by_time = count(ctx, [[SELECT count(*) FROM (SELECT 1 FROM contact_interaction_events
            WHERE message_id IS NULL GROUP BY conversation_id, event_type, event_timestamp HAVING count(*) > 1) d]])
        check(by_message + by_time == 0,
              "contact_interaction_events holds %d duplicated messages and %d duplicated timed events: "
              .. "remove them before adding the unique indexes", by_message, by_time)
      end,
    },
  },

  phase "migrate" {
    transaction = true,
    step "version column" {
      when = function(ctx)
        if count(ctx, [[SELECT count(*) FROM information_schema.columns
                        WHERE table_name = 'messenger_conversations' AND column_name = 'version']]) > 0 then
          return "version column already exists"
        end
        return true
      end,
      run = function(ctx) ctx.db:exec("ALTER TABLE messenger_conversations ADD COLUMN version INTEGER DEFAULT 0") end,
      rollback = function(ctx) ctx.db:exec("ALTER TABLE messenger_conversations DROP COLUMN IF EXISTS version") end,
    },
    step "unique event indexes" {
      when = unless_present("the unique event indexes", 2, [[SELECT count(*) FROM pg_indexes
        WHERE indexname IN ('idx_unique_event_by_message', 'idx_unique_event_by_timestamp')]]),
      run = function(ctx)
        ctx.db:exec([[CREATE UNIQUE INDEX idx_unique_event_by_message
                      ON contact_interaction_events (conversation_id, message_id) WHERE message_id IS NOT NULL]])
        ctx.db:exec([[CREATE UNIQUE INDEX idx_unique_event_by_timestamp
                      ON contact_interaction_events (conversation_id, event_type, event_timestamp) WHERE message_id IS NULL]])
      end,
      rollback = function(ctx)
        ctx.db:exec("DROP INDEX IF EXISTS idx_unique_event_by_message")
        ctx.db:exec("DROP INDEX IF EXISTS idx_unique_event_by_timestamp")
      end,
    },
    step "sync tables" {
      when = unless_present("the tables sync_state and sync_locks", 2,
        "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('sync_state', 'sync_locks')"),
      run = function(ctx) ctx.db:script("critical_fixes/sync_tables.sql") end,
      rollback = function(ctx)
        ctx.db:exec("DROP TABLE IF EXISTS sync_locks CASCADE")
        ctx.db:exec("DROP TABLE IF EXISTS sync_state CASCADE")
      end,
    },
    step "sync functions" {
      when = unless_present("the sync functions", 6, [[SELECT count(DISTINCT proname) FROM pg_proc
        WHERE proname IN ('acquire_sync_lock', 'release_sync_lock', 'extend_sync_lock', 'cleanup_expired_locks',
                          'upsert_conversation_with_events', 'bulk_upsert_conversations_with_events')]]),
      run = function(ctx) ctx.db:script("critical_fixes/functions.sql") end,
      rollback = function(ctx)
        for _, f in ipairs { "acquire_sync_lock", "release_sync_lock", "extend_sync_lock", "cleanup_expired_locks",
                             "upsert_conversation_with_events", "bulk_upsert_conversations_with_events" } do
          ctx.db:exec("DROP FUNCTION IF EXISTS " .. f .. " CASCADE")  -- our names, not input
        end
      end,
    },
  },

  phase "verify" {
    step "version column" {
      run = function(ctx)
        local col = ctx.db:query([[SELECT data_type, column_default FROM information_schema.columns
                                   WHERE table_name = 'messenger_conversations' AND column_name = 'version']])
        check(#col == 1, "messenger_conversations has no version column")
        check(col[1].data_type == "integer" and col[1].column_default == "0",
              "version column is %s DEFAULT %s; expected integer DEFAULT 0", col[1].data_type, tostring(col[1].column_default))
      end,
    },
    step "unique constraints" {
      run = function(ctx)
        local n = count(ctx, [[SELECT count(*) FROM pg_indexes WHERE tablename = 'contact_interaction_events'
                               AND indexname LIKE 'idx_unique_event%']])
        check(n == 2, "found %d of the 2 unique event indexes (by_message, by_timestamp)", n)
      end,
    },
    step "new tables" {
      run = function(ctx)
        local n = count(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('sync_state', 'sync_locks')")
        check(n == 2, "found %d of the 2 tables sync_state and sync_locks", n)
      end,
    },
    step "RPC functions" {
      run = function(ctx)
        local n = count(ctx, "SELECT count(DISTINCT routine_name) FROM information_schema.routines WHERE routine_name = ANY($1::text[])",
                        "{" .. table.concat(FUNCTIONS, ",") .. "}")
        check(n == #FUNCTIONS, "found %d of the %d RPC functions", n, #FUNCTIONS)
      end,
    },
    step "sync lock holds off a second sync" {
      run = function(ctx)
        local page = "runbook-smoke-test:" .. ctx.run
        check(count(ctx, "SELECT acquire_sync_lock($1, 'first')", page), "could not take a free sync lock")
        local second = count(ctx, "SELECT acquire_sync_lock($1, 'second')", page)
        local extended = count(ctx, "SELECT extend_sync_lock($1, 'first')", page)
        local released = count(ctx, "SELECT release_sync_lock($1, 'first')", page)
        check(not second, "a second sync got the lock while the first held it")
        check(extended and released, "the holder could not extend (%s) or release (%s) its lock",
              tostring(extended), tostring(released))
      end,
    },
    step "upserts do not duplicate events" {
      -- The same sync batch twice: the second run adds no events. The test rows are removed.
      run = function(ctx)
        local page = "runbook-smoke-test:" .. ctx.run
        local batch = { { sender_id = "smoke", sender_name = "Smoke Test", last_message = "hi",
                          last_message_at = "2025-01-01T00:00:00Z",
                          events = { { event_type = "message", message_id = "m1", event_timestamp = "2025-01-01T00:00:00Z" },
                                     { event_type = "read", event_timestamp = "2025-01-01T00:01:00Z" } } } }
        ctx.db:exec("SELECT bulk_upsert_conversations_with_events($1, $2::jsonb)", page, batch)
        ctx.db:exec("SELECT bulk_upsert_conversations_with_events($1, $2::jsonb)", page, batch)
        local row = ctx.db:query([[SELECT c.version, count(e.id) AS events FROM messenger_conversations c
                                   LEFT JOIN contact_interaction_events e ON e.conversation_id = c.id
                                   WHERE c.page_id = $1 GROUP BY c.id, c.version]], page)
        ctx.db:exec("DELETE FROM messenger_conversations WHERE page_id = $1", page)
        check(#row == 1, "the batch created %d conversations, expected 1", #row)
        check(row[1].events == 2, "two identical batches left %d events, expected 2", row[1].events)
        check(row[1].version == 1, "the second upsert left version %d, expected 1", row[1].version)
      end,
    },
    step "expired locks are cleaned up" {
      run = function(ctx)
        local removed = count(ctx, "SELECT cleanup_expired_locks()")
        audit.note("critical fixes migration completed", { expired_locks_removed = removed })
      end,
    },
  },
}
