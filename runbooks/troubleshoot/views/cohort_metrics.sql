-- cohort_metrics as its migration creates it (the "migration SQL" seed 004 recreates a corrupted
-- materialized view from): submissions and approval rate per cohort. troubleshoot.views runs
-- this file, in one transaction with the DROP, when the view in the database is broken.
CREATE MATERIALIZED VIEW cohort_metrics AS
SELECT u.role AS cohort, count(DISTINCT u.id) AS participants, count(s.id) AS submissions,
       count(s.id) FILTER (WHERE s.status = 'APPROVED') AS approved,
       round(count(s.id) FILTER (WHERE s.status = 'APPROVED')::numeric
             / nullif(count(s.id) FILTER (WHERE s.status <> 'PENDING'), 0), 3) AS approval_rate
FROM users u JOIN submissions s ON s.user_id = u.id
GROUP BY u.role;
CREATE UNIQUE INDEX idx_cohort_metrics_cohort ON cohort_metrics (cohort);
