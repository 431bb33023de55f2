-- Fixture for migration.critical_fixes: the Messenger inbox before the fix -- conversations
-- synced from Facebook pages and the interaction events recorded for them. No duplicates
-- among the events, so the unique indexes can be built.
CREATE TABLE messenger_conversations (
    id              SERIAL PRIMARY KEY,
    page_id         TEXT NOT NULL,
    sender_id       TEXT NOT NULL,
    sender_name     TEXT,
    last_message    TEXT,
    last_message_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE contact_interaction_events (
    id              SERIAL PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES messenger_conversations(id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    message_id      TEXT,
    event_timestamp TIMESTAMPTZ NOT NULL,
    payload         JSONB NOT NULL DEFAULT '{}',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

INSERT INTO messenger_conversations (page_id, sender_id, sender_name, last_message, last_message_at)
SELECT 'page_' || (g % 3), 'psid_' || g, 'Contact ' || g, 'hello ' || g, now() - (g || ' hours')::interval
FROM generate_series(1, 30) g;
-- Messages (with a Messenger message id) and read receipts (without one) per conversation.
INSERT INTO contact_interaction_events (conversation_id, event_type, message_id, event_timestamp, payload)
SELECT c.id, 'message', 'm_' || c.id || '_' || k, c.last_message_at - (k || ' minutes')::interval,
       jsonb_build_object('text', 'message ' || k)
FROM messenger_conversations c, generate_series(1, 4) k;
INSERT INTO contact_interaction_events (conversation_id, event_type, message_id, event_timestamp)
SELECT c.id, 'read', NULL, c.last_message_at + interval '1 minute'
FROM messenger_conversations c;
