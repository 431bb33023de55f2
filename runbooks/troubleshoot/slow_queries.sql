-- Fixture for troubleshoot.slow_queries (seed 004, "Performance Issues - Slow Queries"): the
-- LEAPS tracker (leaps.sql) after a busy term -- 40,000 more submissions, a few hundred still
-- pending review, and 60,000 more points -- with none of the guide's "common performance
-- indexes", and without the (activity_code, status) index someone dropped as "unused", so the
-- review queue reads the whole submissions table.
\ir leaps.sql

DROP INDEX idx_submissions_activity_status;

INSERT INTO submissions (id, user_id, activity_code, status, payload, created_at)
SELECT 'sub_bulk_' || g, 'user_' || lpad((1 + g % 16)::text, 2, '0'),
       (ARRAY['EXPLORE', 'AMPLIFY', 'PRESENT', 'SHINE'])[1 + g % 4],
       CASE WHEN g % 100 = 0 THEN 'PENDING' WHEN g % 7 = 0 THEN 'REJECTED' ELSE 'APPROVED' END,
       jsonb_build_object('evidence', 'file', 'n', g), now() - make_interval(mins => g)
FROM generate_series(1, 40000) g;
INSERT INTO points_ledger (user_id, activity_code, source, delta_points, created_at)
SELECT 'user_' || lpad((1 + g % 16)::text, 2, '0'), 'AMPLIFY', 'FORM', 2, now() - make_interval(mins => g)
FROM generate_series(1, 60000) g;
ANALYZE;
