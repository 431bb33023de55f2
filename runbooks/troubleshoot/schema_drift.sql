-- Fixture for troubleshoot.schema_drift (seed 004, "Schema Drift Issues"): the LEAPS tracker as
-- its migrations build it (leaps.sql), then changed by hand outside them -- a column the schema
-- does not know ("Database has extra columns not in schema"), a dropped index and a widened type.
\ir leaps.sql

ALTER TABLE users ADD COLUMN legacy_score INTEGER;
DROP INDEX idx_points_ledger_external;
ALTER TABLE submissions ALTER COLUMN review_note TYPE VARCHAR(500);
