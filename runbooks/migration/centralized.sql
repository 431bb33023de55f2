-- Fixture for migration.centralized: the Slack bot's old schema with a little data, and the
-- new centralized tables, empty. Loaded into the sandbox by `runbook run ... --sandbox`.
CREATE TYPE platform_type AS ENUM ('slack', 'web');

-- The old schema.
CREATE TABLE conversations (
    id              SERIAL PRIMARY KEY,
    slack_channel   TEXT NOT NULL,
    slack_thread_ts TEXT,
    user_id         INTEGER,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE messages (
    id              SERIAL PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    slack_user_id   TEXT,
    message_type    TEXT NOT NULL CHECK (message_type IN ('user_query', 'bot_response')),
    content         TEXT NOT NULL,
    error_message   TEXT,
    slack_ts        TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE message_reactions (
    id            SERIAL PRIMARY KEY,
    message_id    INTEGER NOT NULL REFERENCES messages(id),
    slack_user_id TEXT,
    reaction      TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The new centralized schema.
CREATE TABLE users (
    id                SERIAL PRIMARY KEY,
    platform          platform_type NOT NULL,
    platform_user_id  TEXT NOT NULL,
    username          TEXT,
    display_name      TEXT,
    platform_metadata JSONB NOT NULL DEFAULT '{}',
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (platform, platform_user_id)
);
CREATE TABLE user_queries (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    user_id         INTEGER REFERENCES users(id),
    content         TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE bot_responses (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    content         TEXT NOT NULL,
    error_message   TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The migration log of seed 000 (the runbook creates it when it is missing).
CREATE TABLE migration_log (
    id SERIAL PRIMARY KEY,
    step_name TEXT NOT NULL,
    status TEXT NOT NULL, -- 'START', 'SUCCESS', 'ERROR', 'ROLLBACK'
    message TEXT,
    error_details JSONB,
    records_affected INTEGER,
    execution_time_ms INTEGER,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- A little history to migrate.
INSERT INTO conversations (slack_channel, slack_thread_ts)
SELECT 'C0' || (g % 4), '1700000000.' || g FROM generate_series(1, 12) g;
INSERT INTO messages (conversation_id, slack_user_id, message_type, content, error_message, created_at)
SELECT 1 + (g % 12),
       CASE WHEN g % 2 = 0 THEN 'U0' || (g % 5) END,
       CASE WHEN g % 2 = 0 THEN 'user_query' ELSE 'bot_response' END,
       'message ' || g,
       CASE WHEN g % 17 = 0 THEN 'model timeout' END,
       now() - (g || ' minutes')::interval
FROM generate_series(1, 120) g;
INSERT INTO message_reactions (message_id, slack_user_id, reaction)
SELECT 1 + (g % 120), 'U0' || (g % 7), CASE WHEN g % 3 = 0 THEN 'thumbsdown' ELSE 'thumbsup' END
FROM generate_series(1, 40) g;
