-- Prisma migration 20250904123000_add_submission_reviews (the one the migrations.sql fixture
-- shows failed half-way: the table was created, then the foreign key failed on orphaned rows).
CREATE TABLE submission_reviews (
    id            TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    submission_id TEXT NOT NULL,
    reviewer_id   TEXT NOT NULL,
    decision      TEXT NOT NULL CHECK (decision IN ('APPROVED', 'REJECTED')),
    note          TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_submission_reviews_submission ON submission_reviews (submission_id);
ALTER TABLE submission_reviews
    ADD CONSTRAINT submission_reviews_submission_fkey FOREIGN KEY (submission_id) REFERENCES submissions (id);
