-- Fixture for troubleshoot.recovery_check: the LEAPS tracker (leaps.sql) after a restore that
-- went well -- the planted orphans removed and the leaderboard refreshed -- so the check passes.
-- Against leaps.sql itself it fails, naming the orphans.
\ir leaps.sql
DELETE FROM submissions s WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id)
                             OR NOT EXISTS (SELECT 1 FROM activities a WHERE a.code = s.activity_code);
DELETE FROM points_ledger p WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = p.user_id);
DELETE FROM submission_attachments sa WHERE NOT EXISTS (SELECT 1 FROM submissions s WHERE s.id = sa.submission_id);
REFRESH MATERIALIZED VIEW leaderboard_totals;
