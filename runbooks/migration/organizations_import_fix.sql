-- Fixture for migration.organizations_import_fix: organizations before the 42P10 fix -- no
-- unique index on (name, type), so the importer's ON CONFLICT fails. Soft-deleted rows may
-- repeat an active name (in any case); active rows are unique, case-insensitively too.
CREATE TABLE organizations (
    id         SERIAL PRIMARY KEY,
    name       TEXT NOT NULL,
    type       TEXT NOT NULL CHECK (type IN ('customer', 'partner', 'vendor')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ
);
CREATE INDEX organizations_type_idx ON organizations (type);

INSERT INTO organizations (name, type)
SELECT 'Organization ' || g, (ARRAY['customer', 'partner', 'vendor'])[1 + g % 3]
FROM generate_series(1, 300) g;
-- Earlier imports left deleted copies behind: same names, some in other cases.
INSERT INTO organizations (name, type, deleted_at)
SELECT CASE WHEN g % 2 = 0 THEN upper('Organization ' || g) ELSE 'Organization ' || g END,
       (ARRAY['customer', 'partner', 'vendor'])[1 + g % 3], now() - interval '30 days'
FROM generate_series(1, 40) g;

-- The maintenance flag of the plan's rollback phases 1 and 3: the importer runs only while
-- import_enabled is true, and shows maintenance_message otherwise.
CREATE TABLE system_settings (
    setting_key         TEXT PRIMARY KEY,
    import_enabled      BOOLEAN NOT NULL DEFAULT true,
    maintenance_message TEXT
);
INSERT INTO system_settings (setting_key) VALUES ('import_config');

-- The plan's import monitoring table, as the importer fills it (one row per import batch).
CREATE TABLE import_monitoring (
    id                 SERIAL PRIMARY KEY,
    session_id         UUID NOT NULL,
    operation_start    TIMESTAMP DEFAULT NOW(),
    operation_end      TIMESTAMP,
    records_attempted  INTEGER,
    records_successful INTEGER,
    records_failed     INTEGER,
    error_code         TEXT,
    error_message      TEXT,
    performance_ms     NUMERIC
);
CREATE INDEX idx_import_monitoring_session ON import_monitoring (session_id, operation_start);

-- Healthy recent imports: one batch a minute for the last 12 minutes, 99% of records
-- imported, one batch with a validation failure, answers in 120-230 ms.
INSERT INTO import_monitoring (session_id, operation_start, operation_end, records_attempted,
                               records_successful, records_failed, error_code, error_message, performance_ms)
SELECT md5('session ' || g)::uuid,
       localtimestamp - g * interval '1 minute',
       localtimestamp - g * interval '1 minute' + interval '200 milliseconds',
       100,
       CASE WHEN g = 7 THEN 88 ELSE 100 END,
       CASE WHEN g = 7 THEN 12 ELSE 0 END,
       CASE WHEN g = 7 THEN 'VALIDATION' END,
       CASE WHEN g = 7 THEN 'Validation failed: 12 rows without a type' END,
       120 + g * 9
FROM generate_series(1, 12) g;
