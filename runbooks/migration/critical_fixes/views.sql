-- The monitoring views of the guide's phase 6 ("SELECT * FROM active_syncs; SELECT * FROM
-- sync_statistics;"): syncs under way with their page lock, and per-page sync outcomes.
CREATE VIEW active_syncs AS
SELECT s.session_id, s.page_id, s.conversations_synced, s.next_cursor, s.started_at, s.updated_at,
       l.locked_by, l.locked_at, l.expires_at,
       CASE WHEN l.page_id IS NULL THEN 'UNLOCKED'
            WHEN l.expires_at < now() THEN 'EXPIRED'
            ELSE 'ACTIVE' END AS lock_status,
       extract(epoch FROM now() - s.started_at)::integer AS duration_seconds
FROM sync_state s
LEFT JOIN sync_locks l ON l.page_id = s.page_id
WHERE s.status = 'running';

CREATE VIEW sync_statistics AS
SELECT page_id,
       count(*) AS total_syncs,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'partial') AS partial,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'running') AS running,
       round(count(*) FILTER (WHERE status = 'completed')::numeric
             / nullif(count(*) FILTER (WHERE status <> 'running'), 0), 4) AS completion_rate,
       sum(conversations_synced) AS conversations_synced,
       max(completed_at) AS last_completed_at
FROM sync_state
GROUP BY page_id;
