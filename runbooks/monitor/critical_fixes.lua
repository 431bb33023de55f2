-- Seed 002 (Critical Fixes Migration Guide), "Next Steps" 1. "Monitor for 48 hours - Watch for
-- any issues", over what phase 6 (Monitor and Validate) and the troubleshooting section look
-- at: stuck sync locks ("Sync lock not releasing"), duplicate events, conversations without
-- events ("Events not being created"), the sync completion rate (the guide expects ~95%), and
-- the unique indexes the fix depends on. Run it after migration.critical_fixes.
--
-- The config this needs (runbook.lua) for the alerts and the escalation to reach people:
--   channels = { team = { type = "slack", webhook = secret "SLACK_WEBHOOK_URL" }, ... },
--   default_channels = { "team" },
--   escalation = { database = { levels = { { after = "0m", notify = { "team" } },
--                                          { after = "15m", notify = { "oncall" } } } } },
--   default_escalation = "database",
-- Without channels an alert is shown and audited as "not sent"; without a policy the
-- escalation is a watch.error record. The watch goes on either way.
runbook "monitor.critical_fixes" {
  title = "48 hours of watching the conversation sync after the critical fixes",
  tags = { "monitor", "seed-002" },
  fixture = "critical_fixes.sql",
  params = {
    watch_for = { type = "duration", default = "48h", doc = "how long to watch" },
    every     = { type = "duration", default = "5m", doc = "how often to sample" },
  },

  watch "48 hours after deploy" {
    every = function(ctx) return ctx.params.every end, lasting = function(ctx) return ctx.params.watch_for end,
    metrics = {
      unique_indexes = [[SELECT count(*) FROM pg_indexes WHERE tablename = 'contact_interaction_events'
                         AND indexname IN ('idx_unique_event_by_message', 'idx_unique_event_by_timestamp')]],
      stuck_locks = [[SELECT count(*) FROM sync_locks WHERE expires_at < now()]],
      duplicate_events = [[SELECT
          (SELECT count(*) FROM (SELECT 1 FROM contact_interaction_events WHERE message_id IS NOT NULL
            GROUP BY conversation_id, message_id HAVING count(*) > 1) d)
        + (SELECT count(*) FROM (SELECT 1 FROM contact_interaction_events WHERE message_id IS NULL
            GROUP BY conversation_id, event_type, event_timestamp HAVING count(*) > 1) d)]],
      conversations_without_events = [[SELECT count(*) FROM messenger_conversations c
          WHERE NOT EXISTS (SELECT 1 FROM contact_interaction_events e WHERE e.conversation_id = c.id)]],
      -- syncs finished in the last hour that completed (NULL: none finished)
      completion_rate = [[SELECT avg((status = 'completed')::int)::float8 FROM sync_state
                          WHERE status <> 'running' AND updated_at > now() - interval '1 hour']],
    },
    trigger "unique indexes missing" {
      when = "unique_indexes < 2",
      action = escalate { level = 2, severity = "critical", cause = "unique event indexes missing",
                          summary = "A unique event index of the critical fixes is gone: duplicates can come back" },
    },
    trigger "duplicate events" {
      when = "duplicate_events > 0",
      action = alert { severity = "error", summary = "Duplicate events in contact_interaction_events" },
    },
    trigger "stuck locks" {
      when = "stuck_locks > 0",
      action = alert { severity = "warning", summary = "Sync lock not releasing: expired sync locks (SELECT cleanup_expired_locks())" },
    },
    trigger "events not being created" {
      when = "conversations_without_events > 0", sustained = "15m",
      action = alert { severity = "error", summary = "Conversations without events for 15 minutes" },
    },
    trigger "sync completion below 95%" {
      when = "completion_rate < 0.95", sustained = "1h", clear_when = "completion_rate >= 0.95",
      action = alert { severity = "warning", summary = "Sync completion rate below 95% for an hour" },
    },
  },
}
