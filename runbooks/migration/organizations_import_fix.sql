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
