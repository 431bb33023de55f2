-- Fixture for troubleshoot.migrations (seed 004, "Migration Problems - Migration Failures"): the
-- LEAPS tracker (leaps.sql) with Prisma's migration table, _prisma_migrations, holding three
-- applied migrations and one that failed half-way: 20250904123000_add_submission_reviews
-- (prisma/migrations/.../migration.sql beside this file) created its table, then stopped on
-- its index (finished_at and rolled_back_at NULL, the error in logs). `prisma migrate deploy`
-- refuses to go on until the failed row is resolved.
\ir leaps.sql

CREATE TABLE _prisma_migrations (
    id                  VARCHAR(36) PRIMARY KEY,
    checksum            VARCHAR(64) NOT NULL,
    finished_at         TIMESTAMPTZ,
    migration_name      VARCHAR(255) NOT NULL,
    logs                TEXT,
    rolled_back_at      TIMESTAMPTZ,
    started_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count INTEGER NOT NULL DEFAULT 0
);
INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count) VALUES
    ('8d0e6f2a-1b7c-4a51-9a0e-2c1f0b9d7a01', md5('init'), now() - interval '60 days', '20250801090000_init', NULL, NULL,
     now() - interval '60 days', 1),
    ('8d0e6f2a-1b7c-4a51-9a0e-2c1f0b9d7a02', md5('kajabi'), now() - interval '30 days', '20250815100000_kajabi_events', NULL, NULL,
     now() - interval '30 days', 1),
    ('8d0e6f2a-1b7c-4a51-9a0e-2c1f0b9d7a03', md5('leaderboard'), now() - interval '20 days', '20250820110000_leaderboard_totals',
     NULL, NULL, now() - interval '20 days', 1),
    ('8d0e6f2a-1b7c-4a51-9a0e-2c1f0b9d7a04', md5('reviews'), NULL, '20250904123000_add_submission_reviews',
     E'Database error code: 57014\n\nDatabase error:\nERROR: canceling statement due to statement timeout\n\n'
     'Migration 20250904123000_add_submission_reviews failed to apply.',
     NULL, now() - interval '2 hours', 0);

-- What the failed migration left: its table, without the index and foreign key that follow it.
CREATE TABLE submission_reviews (
    id            TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    submission_id TEXT NOT NULL,
    reviewer_id   TEXT NOT NULL,
    decision      TEXT NOT NULL CHECK (decision IN ('APPROVED', 'REJECTED')),
    note          TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
