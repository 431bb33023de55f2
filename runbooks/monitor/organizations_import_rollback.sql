-- Fixture for monitor.organizations_import_rollback: organizations after the import fix was
-- rolled back (migration.organizations_import_fix's fixture: no unique indexes, imports on),
-- with the importer's 42P10 errors back in the last minutes, as the plan expects.
\ir ../migration/organizations_import_fix.sql

INSERT INTO import_monitoring (session_id, operation_start, operation_end, records_attempted,
                               records_successful, records_failed, error_code, error_message, performance_ms)
SELECT md5('after rollback ' || g)::uuid, localtimestamp - g * interval '20 seconds',
       localtimestamp - g * interval '20 seconds' + interval '50 milliseconds', 10, 0, 10, '42P10',
       'there is no unique or exclusion constraint matching the ON CONFLICT specification', 50
FROM generate_series(1, 3) g;
