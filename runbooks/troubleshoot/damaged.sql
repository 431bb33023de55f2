-- Fixture for troubleshoot.damage_assessment and restore_from_backup: the LEAPS tracker
-- (leaps.sql, with its orphans) after storage damage. Made with catalog edits a superuser can
-- do (a sandbox is one), so the damage is real to the server:
--   kajabi_events cannot be read: its data file is gone (the catalog points at a file that
--     does not exist, as after a lost or truncated file);
--   idx_submissions_activity_status is INVALID (as a failed CREATE INDEX CONCURRENTLY or a
--     corrupted index leaves it);
--   most of the points ledger is lost: 5 entries are left, fewer than the 20 expected.
\ir leaps.sql
DELETE FROM points_ledger WHERE id NOT IN (SELECT id FROM points_ledger ORDER BY id LIMIT 5);
UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_submissions_activity_status'::regclass;
UPDATE pg_class SET relfilenode = 4000000000 WHERE oid = 'kajabi_events'::regclass;
