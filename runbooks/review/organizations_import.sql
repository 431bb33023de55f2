-- Fixture for review.organizations_import_weekly and _monthly: organizations some weeks after
-- migration.organizations_import_fix (its fixture, with the two unique indexes it builds), and
-- 30 days of the importer's batches: mostly healthy, one bad day of validation failures, and
-- the occasional duplicate the case-insensitive index refused (23505).
\ir ../migration/organizations_import_fix.sql

CREATE UNIQUE INDEX organizations_exact_name_type_active ON organizations (name, type) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX unique_organization_name_type_ci ON organizations (lower(trim(name)), type) WHERE deleted_at IS NULL;

INSERT INTO import_monitoring (session_id, operation_start, operation_end, records_attempted,
                               records_successful, records_failed, error_code, error_message, performance_ms)
SELECT md5('history ' || d || '/' || b)::uuid,
       date_trunc('day', localtimestamp) - d * interval '1 day' + b * interval '1 hour',
       date_trunc('day', localtimestamp) - d * interval '1 day' + b * interval '1 hour' + interval '300 milliseconds',
       100,
       CASE WHEN d = 3 THEN 70 WHEN b = 12 AND d % 10 = 5 THEN 99 ELSE 100 END,
       CASE WHEN d = 3 THEN 30 WHEN b = 12 AND d % 10 = 5 THEN 1 ELSE 0 END,
       CASE WHEN d = 3 THEN 'VALIDATION' WHEN b = 12 AND d % 10 = 5 THEN '23505' END,
       CASE WHEN d = 3 THEN 'Validation failed: rows without a type'
            WHEN b = 12 AND d % 10 = 5 THEN 'duplicate key value violates unique constraint "unique_organization_name_type_ci"' END,
       150 + (d % 7) * 10
FROM generate_series(1, 30) d, generate_series(8, 17) b;
