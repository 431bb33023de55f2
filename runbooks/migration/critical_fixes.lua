-- Seed 002 (Critical Fixes Migration Guide), phase 1: the database side of the conversation
-- sync fix -- optimistic locking (a version column, skipped when it already exists, as step
-- 1.3 says), unique indexes against duplicate events, sync state and per-page sync locks, the
-- sync's RPC functions and the monitoring views of phase 6 (active_syncs, sync_statistics);
-- before it the prerequisites' backup and the version and privilege checks of step 1.3; after
-- it the guide's four verification queries (step 1.2), a test of the sync lock and of
-- duplicate-free upserts (5.1, 5.4), its ten success criteria, and its closing "Migration
-- Checklist" (checked where the database can tell, asked of a person where it cannot); its
-- rollback plan (step 2) is the rollback handlers. The 48 hours of monitoring after it are
-- monitor.critical_fixes.
-- Prerequisites 2. "Schedule maintenance window": it runs only inside `window` (in `tz`); outside
-- it the run is skipped, saying so (exit 0). `--param window=any` runs it now.
local backup = require "backup"
local guards = require "guards"

local FUNCTIONS = { "acquire_sync_lock", "release_sync_lock", "upsert_conversation_with_events",
                    "bulk_upsert_conversations_with_events" }

local function count(ctx, sql, ...) return ctx.db:scalar(sql, ...) end

local deadlocks_at_start  -- the database's deadlock count when the run began (preflight)
local backup_file         -- the backup this run took (for the closing checklist)

--- Runs fn(page) with a test page of this run's own, and removes what it left there (its
--- conversations, their events, its sync sessions and locks), however fn ends.
local function with_test_page(ctx, fn)
  local page = "runbook-smoke-test:" .. ctx.run
  local ok, err = pcall(fn, page)
  ctx.db:exec("DELETE FROM messenger_conversations WHERE page_id = $1", page)
  ctx.db:exec("DELETE FROM sync_state WHERE page_id = $1", page)
  ctx.db:exec("DELETE FROM sync_locks WHERE page_id = $1", page)
  if not ok then error(err, 0) end
end

local DUPLICATE_EVENTS = [[SELECT
    (SELECT count(*) FROM (SELECT 1 FROM contact_interaction_events WHERE message_id IS NOT NULL
      GROUP BY conversation_id, message_id HAVING count(*) > 1) d)
  + (SELECT count(*) FROM (SELECT 1 FROM contact_interaction_events WHERE message_id IS NULL
      GROUP BY conversation_id, event_type, event_timestamp HAVING count(*) > 1) d)]]

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
  guard = guards.maintenance_window(function(ctx) return ctx.params.window, ctx.params.tz end),
  params = {
    window = { type = "string", default = "02:00-04:00",
               doc = "the maintenance window, HH:MM-HH:MM in tz; 'any' to run outside one" },
    tz = { type = "string", default = "UTC", doc = "the window's time zone (tz database name)" },
    backup_dir = { type = "string", default = "backups", doc = "where the backup goes (relative: to the working directory)" },
    min_completion_rate = { type = "number", default = 0.95, doc = "success criterion: share of finished syncs that completed" },
    min_syncs = { type = "integer", default = 20, doc = "finished syncs needed before the completion rate is judged" },
  },

  phase "preflight" {
    -- Step 1.3 "Check PostgreSQL version (should be 12+)": 13 here, for sync_state's built-in
    -- gen_random_uuid().
    step "PostgreSQL version" {
      run = function(ctx)
        local v = count(ctx, "SELECT current_setting('server_version_num')::int")
        check(v >= 130000, "PostgreSQL %s is too old: the fix needs 13 or later", count(ctx, "SHOW server_version"))
        deadlocks_at_start = count(ctx, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return { server_version_num = v, deadlocks = deadlocks_at_start }
      end,
    },
    -- Step 1.3 "Ensure you have superuser privileges": what the migration needs, precisely.
    step "privileges" {
      run = function(ctx)
        local p = ctx.db:query([[SELECT current_user AS role,
            has_schema_privilege('public', 'CREATE') AS create_in_public,
            has_language_privilege('plpgsql', 'USAGE') AS plpgsql,
            (SELECT bool_and(pg_has_role(c.relowner, 'USAGE')) FROM pg_class c
              WHERE c.oid IN ('messenger_conversations'::regclass, 'contact_interaction_events'::regclass)) AS owns_tables]])[1]
        check(p.create_in_public, "role %s may not create in schema public (tables, views, functions)", p.role)
        check(p.plpgsql, "role %s may not use plpgsql (the sync functions)", p.role)
        check(p.owns_tables, "role %s does not own messenger_conversations and contact_interaction_events "
              .. "(ALTER TABLE, CREATE INDEX): run as their owner or a superuser", p.role)
        return p
      end,
    },
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

  -- Prerequisites 1. "Backup your database", checked by a restore into a throwaway PostgreSQL.
  phase "backup" {
    step "backup before the fix" {
      run = function(ctx)
        local b = backup.dump(ctx, { dir = ctx.params.backup_dir, name = "before_critical_fixes" })
        backup.verify(ctx, b)
        backup_file = b.file
        return b
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
    step "monitoring views" {
      when = unless_present("the views active_syncs and sync_statistics", 2,
        "SELECT count(*) FROM information_schema.views WHERE table_name IN ('active_syncs', 'sync_statistics')"),
      run = function(ctx) ctx.db:script("critical_fixes/views.sql") end,
      rollback = function(ctx)
        ctx.db:exec("DROP VIEW IF EXISTS active_syncs")
        ctx.db:exec("DROP VIEW IF EXISTS sync_statistics")
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
    -- 6.1 "Monitor Active Syncs" and 6.2 "Monitor Sync Locks", once.
    step "monitoring views answer" {
      run = function(ctx)
        local r = ctx.db:query([[SELECT (SELECT count(*) FROM active_syncs) AS active_syncs,
                                        (SELECT count(*) FROM active_syncs WHERE lock_status = 'EXPIRED') AS expired_locks,
                                        (SELECT count(*) FROM sync_statistics) AS pages_with_syncs]])[1]
        audit.note("sync monitoring", r)
        return r
      end,
    },
  },

  -- "Success Criteria", each checked on the database (rows a test makes are removed). The
  -- criteria that live in the application (HTTP 409, Zod validation, logs) are checked through
  -- what the database does for them.
  phase "success criteria" {
    step "concurrent syncs are prevented" {
      run = function(ctx)
        with_test_page(ctx, function(page)
          check(count(ctx, "SELECT acquire_sync_lock($1, 'sync-1')", page), "a free page's sync lock could not be taken")
          check(not count(ctx, "SELECT acquire_sync_lock($1, 'sync-2')", page), "a second sync of the page got its lock (the API's 409)")
        end)
      end,
    },
    step "sync resumption works" {
      -- a partial sync's session, found again by page with its cursor, and completed
      run = function(ctx)
        with_test_page(ctx, function(page)
          local id = count(ctx, [[INSERT INTO sync_state (page_id, status, next_cursor, conversations_synced)
                                  VALUES ($1, 'partial', 'cursor-after-25', 25) RETURNING session_id]], page)
          local resume = ctx.db:query([[SELECT session_id, next_cursor FROM sync_state WHERE page_id = $1 AND status = 'partial'
                                        ORDER BY started_at DESC LIMIT 1]], page)
          check(#resume == 1 and resume[1].session_id == id and resume[1].next_cursor == "cursor-after-25",
                "the partial sync session was not found to resume")
          ctx.db:exec([[UPDATE sync_state SET status = 'completed', conversations_synced = 40, completed_at = now()
                        WHERE session_id = $1]], id)
          check(count(ctx, "SELECT completed FROM sync_statistics WHERE page_id = $1", page) == 1,
                "sync_statistics does not count the resumed sync as completed")
        end)
      end,
    },
    step "events are created atomically with conversations" {
      run = function(ctx)
        with_test_page(ctx, function(page)
          local ok = pcall(ctx.db.exec, ctx.db, [[SELECT upsert_conversation_with_events($1, 'atomic', 'Atomic', 'hi', now(),
              '[{"event_type": "message", "message_id": "m1", "event_timestamp": "not a time"}]')]], page)
          check(not ok, "an upsert with a malformed event succeeded")
          check(count(ctx, "SELECT count(*) FROM messenger_conversations WHERE page_id = $1", page) == 0,
                "a conversation was left behind without its events")
        end)
      end,
    },
    step "no duplicate events in database" {
      run = function(ctx)
        local n = count(ctx, DUPLICATE_EVENTS)
        check(n == 0, "%d groups of duplicate events", n)
      end,
    },
    step "webhook messages create events" {
      -- one incoming message, as the fixed webhook handler passes it
      run = function(ctx)
        with_test_page(ctx, function(page)
          local r = count(ctx, [[SELECT upsert_conversation_with_events($1, 'webhook_user', 'Webhook User', 'Test message', now(),
              jsonb_build_array(jsonb_build_object('event_type', 'message', 'message_id', 'mid.1', 'event_timestamp', now())))]], page)
          check(r.events_inserted == 1, "the webhook's message created %d events", r.events_inserted)
        end)
      end,
    },
    step "version numbers increment on updates" {
      run = function(ctx)
        with_test_page(ctx, function(page)
          local upsert = "SELECT upsert_conversation_with_events($1, 'versioned', 'V', $2, now(), '[]', $3)"
          local first = count(ctx, upsert, page, "one", db.null)
          local second = count(ctx, upsert, page, "two", first.version)
          check(second.version == first.version + 1, "version went from %d to %d", first.version, second.version)
          local ok, err = pcall(ctx.db.scalar, ctx.db, upsert, page, "stale", first.version)
          check(not ok and err.sqlstate == "40001", "an update from a stale version was not refused")
        end)
      end,
    },
    step "validation catches invalid Facebook data" {
      -- Zod validates in the application; the database refuses an event without its type.
      run = function(ctx)
        with_test_page(ctx, function(page)
          local ok, err = pcall(ctx.db.exec, ctx.db, [[SELECT upsert_conversation_with_events($1, 'invalid', 'I', 'x', now(),
              '[{"message_id": "m1", "event_timestamp": "2025-01-01T00:00:00Z"}]')]], page)
          check(not ok and err.sqlstate == "23502", "an event without event_type was accepted")
        end)
      end,
    },
    step "no race condition errors" {
      -- the database's half of "no race condition errors in logs": no deadlock during the run
      when = function() return deadlocks_at_start ~= nil or "the run was resumed: its starting deadlock count is gone" end,
      run = function(ctx)
        local now = count(ctx, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        check(now == deadlocks_at_start, "%d deadlocks in this database during the migration", now - deadlocks_at_start)
      end,
    },
    step "sync completion rate improved" {
      when = function(ctx)
        local n = count(ctx, "SELECT count(*) FROM sync_state WHERE status <> 'running'")
        if n < ctx.params.min_syncs then
          return string.format("%d finished syncs of the %d needed to judge: monitor.critical_fixes follows the rate", n, ctx.params.min_syncs)
        end
        return true
      end,
      run = function(ctx)
        local rate = count(ctx, "SELECT avg((status = 'completed')::int)::float8 FROM sync_state WHERE status <> 'running'")
        check(rate >= ctx.params.min_completion_rate, "sync completion rate %.1f%% is below %.1f%%",
              rate * 100, ctx.params.min_completion_rate * 100)
        return { completion_rate = rate }
      end,
    },
    step "no data inconsistencies between conversations and events" {
      run = function(ctx)
        local n = count(ctx, [[SELECT count(*) FROM messenger_conversations c
                               WHERE NOT EXISTS (SELECT 1 FROM contact_interaction_events e WHERE e.conversation_id = c.id)]])
        check(n == 0, "%d conversations have no events", n)
      end,
    },
  },

  -- "Migration Checklist", at the end: what the database can show is checked again; what
  -- happens in the application, the team or over the next week is asked of the person running
  -- it (on a terminal; --yes never confirms these, and unconfirmed items do not fail the run).
  checklist "migration checklist" {
    { "Backed up database", check = function(ctx)
        if not backup_file then return false, "no backup was taken by this run" end
        local code = shell.run { "test", "-s", backup_file }
        return code == 0, backup_file
      end },
    { "Read complete migration guide", manual = "Confirm you have read the whole Critical Fixes Migration Guide" },
    { "Tested in staging environment", manual = "Confirm this migration ran in staging before production" },
    { "Ran CRITICAL_FIXES_MIGRATION.sql", check = function(ctx)
        local n = count(ctx, [[SELECT (SELECT count(*) FROM information_schema.columns WHERE table_name = 'messenger_conversations' AND column_name = 'version')
          + (SELECT count(*) FROM pg_indexes WHERE indexname IN ('idx_unique_event_by_message', 'idx_unique_event_by_timestamp'))
          + (SELECT count(*) FROM information_schema.tables WHERE table_name IN ('sync_state', 'sync_locks'))
          + (SELECT count(DISTINCT proname) FROM pg_proc WHERE proname IN ('acquire_sync_lock', 'release_sync_lock', 'extend_sync_lock',
               'cleanup_expired_locks', 'upsert_conversation_with_events', 'bulk_upsert_conversations_with_events'))
          + (SELECT count(*) FROM information_schema.views WHERE table_name IN ('active_syncs', 'sync_statistics'))]])
        return n == 13, string.format("%d of the 13 objects it adds are there", n)
      end },
    { "Verified migration with queries", check = function(ctx)
        local n = count(ctx, "SELECT count(DISTINCT routine_name) FROM information_schema.routines WHERE routine_name = ANY($1::text[])",
                        "{" .. table.concat(FUNCTIONS, ",") .. "}")
        return n == #FUNCTIONS, string.format("%d of the %d RPC functions", n, #FUNCTIONS)
      end },
    { "Installed npm dependencies (zod, uuid)", manual = "Confirm `npm list zod uuid` shows both" },
    { "Updated environment variables", manual = "Confirm SUPABASE_SERVICE_ROLE_KEY and WEBHOOK_VERIFY_TOKEN are set" },
    { "Deployed fixed sync route", manual = "Confirm /api/conversations/sync-fixed is deployed" },
    { "Updated webhook handler", manual = "Confirm the webhook uses WebhookFixed.handleMessage" },
    { "Tested sync lock (concurrent prevention)", check = function(ctx)
        local page = "runbook-checklist:" .. ctx.run
        local first = count(ctx, "SELECT acquire_sync_lock($1, 'checklist-1')", page)
        local second = count(ctx, "SELECT acquire_sync_lock($1, 'checklist-2')", page)
        ctx.db:exec("DELETE FROM sync_locks WHERE page_id = $1", page)
        return first and not second, "a second sync of a locked page was " .. (second and "let through" or "refused")
      end },
    { "Tested sync resumption", manual = "Confirm a partial sync resumed with its resumeSession (step 5.2)" },
    { "Tested webhook events", manual = "Confirm a test webhook event created an event (step 5.3)" },
    { "Verified data consistency", check = function(ctx)
        local n = count(ctx, [[SELECT count(*) FROM messenger_conversations c
                               WHERE NOT EXISTS (SELECT 1 FROM contact_interaction_events e WHERE e.conversation_id = c.id)]])
        local d = count(ctx, DUPLICATE_EVENTS)
        return n == 0 and d == 0, string.format("%d conversations without events, %d groups of duplicate events", n, d)
      end },
    { "Monitored for 24 hours", manual = "Run `runbook run monitor.critical_fixes` (48 hours) and confirm it stayed quiet" },
    { "Updated documentation", manual = "Confirm the sync documentation describes resume and locks" },
    { "Trained team on new features", manual = "Confirm the team knows about sync resume and sync locks" },
    { "Removed old sync route (after 1 week)", manual = "Confirm /api/conversations/sync is removed, a week after" },
  },
}
