-- Sync bookkeeping: one row per sync session (so a partial sync can resume), and one lock
-- per page (so two syncs of one page never run at once).
CREATE TABLE sync_state (
    session_id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    page_id              TEXT NOT NULL,
    status               TEXT NOT NULL DEFAULT 'running'
                         CHECK (status IN ('running', 'partial', 'completed', 'failed')),
    next_cursor          TEXT,
    conversations_synced INTEGER NOT NULL DEFAULT 0,
    error                TEXT,
    started_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at         TIMESTAMPTZ
);
CREATE INDEX idx_sync_state_page_started ON sync_state (page_id, started_at DESC);

CREATE TABLE sync_locks (
    page_id    TEXT PRIMARY KEY,
    locked_by  TEXT NOT NULL,
    locked_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);
