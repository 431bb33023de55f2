-- Fixture for maintenance.sync_locks: the Messenger inbox after migration.critical_fixes, with
-- two locks left by syncs that crashed (expired) and one held by a sync that is running.
\ir ../monitor/critical_fixes.sql

INSERT INTO sync_locks (page_id, locked_by, locked_at, expires_at) VALUES
    ('page_crashed_1', 'sync-a1', now() - interval '2 hours', now() - interval '1 hour 55 minutes'),
    ('page_crashed_2', 'sync-b7', now() - interval '20 minutes', now() - interval '15 minutes'),
    ('page_syncing', 'sync-c3', now(), now() + interval '5 minutes');
