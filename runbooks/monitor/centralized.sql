-- Fixture for monitor.centralized: the database as migration.centralized leaves it (the
-- fixture of migration.rollback_users). In its last hour 2 of 30 bot responses failed.
\ir ../migration/rollback_users.sql
