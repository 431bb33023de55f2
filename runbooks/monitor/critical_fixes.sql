-- Fixture for monitor.critical_fixes: the Messenger inbox after migration.critical_fixes (its
-- fixture, then what its migrate phase adds).
\ir ../migration/critical_fixes.sql

ALTER TABLE messenger_conversations ADD COLUMN version INTEGER DEFAULT 0;
CREATE UNIQUE INDEX idx_unique_event_by_message
    ON contact_interaction_events (conversation_id, message_id) WHERE message_id IS NOT NULL;
CREATE UNIQUE INDEX idx_unique_event_by_timestamp
    ON contact_interaction_events (conversation_id, event_type, event_timestamp) WHERE message_id IS NULL;
\ir ../migration/critical_fixes/sync_tables.sql
\ir ../migration/critical_fixes/functions.sql
\ir ../migration/critical_fixes/views.sql
