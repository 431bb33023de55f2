-- Fixture for troubleshoot.views (seed 004, "Materialized View Issues - View Refresh Failures"
-- and "Analytics & Reporting Problems - Missing Analytics Data"): the LEAPS tracker (leaps.sql)
-- with the three analytics views refresh_all_analytics() refreshes, each broken its own way:
--   leaderboard_totals  stale: points awarded after its last refresh (leaps.sql); it has a
--                       unique index, so it can be refreshed CONCURRENTLY;
--   activity_metrics    stale: submissions made after its last refresh; no unique index, so a
--                       refresh locks readers out (and any reader holds it up);
--   cohort_metrics      never populated, and its definition divides by zero for a cohort with
--                       only pending submissions: every refresh fails ("corrupted"); its
--                       migration's definition is views/cohort_metrics.sql.
-- analytics_refresh_log records when refresh_all_analytics() last ran.
\ir leaps.sql

-- leaps.sql's own activity_metrics (unpopulated, for troubleshoot.analytics) is replaced here by
-- a stale one without a unique index, and refresh_all_analytics() by this fixture's.
DROP FUNCTION refresh_all_analytics();
DROP MATERIALIZED VIEW activity_metrics;

CREATE TABLE analytics_refresh_log (
    id           BIGSERIAL PRIMARY KEY,
    view_name    TEXT NOT NULL,
    refreshed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    seconds      DOUBLE PRECISION
);
INSERT INTO analytics_refresh_log (view_name, refreshed_at, seconds)
VALUES ('leaderboard_totals', now() - interval '20 days', 0.4), ('activity_metrics', now() - interval '20 days', 0.2);

CREATE MATERIALIZED VIEW activity_metrics AS
SELECT a.code AS activity_code, count(s.id) AS submissions,
       count(s.id) FILTER (WHERE s.status = 'APPROVED') AS approved,
       count(s.id) FILTER (WHERE s.status = 'PENDING') AS pending
FROM activities a LEFT JOIN submissions s ON s.activity_code = a.code
GROUP BY a.code;

CREATE MATERIALIZED VIEW cohort_metrics AS
SELECT u.role AS cohort, count(DISTINCT u.id) AS participants, count(s.id) AS submissions,
       count(s.id) FILTER (WHERE s.status = 'APPROVED') AS approved,
       round(count(s.id) FILTER (WHERE s.status = 'APPROVED')::numeric
             / count(s.id) FILTER (WHERE s.status <> 'PENDING'), 3) AS approval_rate
FROM users u JOIN submissions s ON s.user_id = u.id
GROUP BY u.role
WITH NO DATA;

CREATE OR REPLACE FUNCTION refresh_all_analytics() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    REFRESH MATERIALIZED VIEW activity_metrics;
    REFRESH MATERIALIZED VIEW CONCURRENTLY leaderboard_totals;
    REFRESH MATERIALIZED VIEW cohort_metrics;
END
$$;

-- After the last refresh: a reviewer's first (pending) submission, and new work to review.
INSERT INTO submissions (id, user_id, activity_code, status, created_at) VALUES
    ('sub_reviewer_first', 'user_17', 'EXPLORE', 'PENDING', now() - interval '1 hour'),
    ('sub_views_PRESENT_user_09', 'user_09', 'PRESENT', 'PENDING', now() - interval '2 hours'),
    ('sub_views_PRESENT_user_10', 'user_10', 'PRESENT', 'APPROVED', now() - interval '3 hours');
ANALYZE;
