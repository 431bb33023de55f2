-- Seed 000, "Monitoring and Alerting" 1. Health Check Functions: check_database_health(), as
-- the guide writes it, with one change: an hour without bot responses has an error rate of
-- none (HEALTHY, "no responses"), where the guide's NULL rate fell through to UNHEALTHY.
-- Tiers of the error rate over the last hour: under 1% HEALTHY, under 5% WARNING, else UNHEALTHY.
CREATE OR REPLACE FUNCTION check_database_health()
RETURNS TABLE(component TEXT, status TEXT, details TEXT, last_checked TIMESTAMP WITH TIME ZONE) AS $$
BEGIN
    RETURN QUERY
    SELECT 'users'::TEXT,
           CASE WHEN COUNT(*) > 0 AND COUNT(*) = COUNT(CASE WHEN platform IS NOT NULL THEN 1 END)
                THEN 'HEALTHY' ELSE 'UNHEALTHY' END,
           'Total users: ' || COUNT(*)::TEXT || ', Valid platforms: ' || COUNT(CASE WHEN platform IS NOT NULL THEN 1 END)::TEXT,
           NOW()
    FROM users;

    RETURN QUERY
    SELECT 'conversations'::TEXT,
           CASE WHEN orphaned_count = 0 THEN 'HEALTHY'
                WHEN orphaned_count < total_count * 0.01 THEN 'WARNING'
                ELSE 'UNHEALTHY' END,
           'Total: ' || total_count::TEXT || ', Orphaned: ' || orphaned_count::TEXT,
           NOW()
    FROM (SELECT COUNT(*) AS total_count, COUNT(CASE WHEN u.id IS NULL THEN 1 END) AS orphaned_count
          FROM conversations c LEFT JOIN users u ON c.user_id = u.id) health_check;

    RETURN QUERY
    SELECT 'error_rate'::TEXT,
           CASE WHEN error_rate IS NULL OR error_rate < 1 THEN 'HEALTHY'
                WHEN error_rate < 5 THEN 'WARNING'
                ELSE 'UNHEALTHY' END,
           CASE WHEN error_rate IS NULL THEN 'Error rate: no responses in the last hour'
                ELSE 'Error rate: ' || round(error_rate, 2)::TEXT || '%' END,
           NOW()
    FROM (SELECT COUNT(CASE WHEN br.error_message IS NOT NULL THEN 1 END) * 100.0 / NULLIF(COUNT(*), 0) AS error_rate
          FROM bot_responses br
          WHERE br.created_at >= NOW() - INTERVAL '1 hour') error_check;
END
$$ LANGUAGE plpgsql;
