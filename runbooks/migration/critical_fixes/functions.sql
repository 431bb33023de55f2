-- The sync's RPC functions: page locks with an expiry, and atomic upserts of a conversation
-- together with its events (optimistic locking on messenger_conversations.version).

-- Takes the page's lock for `holder` unless someone else holds an unexpired one.
CREATE FUNCTION acquire_sync_lock(p_page_id TEXT, p_holder TEXT, p_ttl_seconds INTEGER DEFAULT 300)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sync_locks WHERE page_id = p_page_id AND expires_at < now();
    INSERT INTO sync_locks (page_id, locked_by, expires_at)
    VALUES (p_page_id, p_holder, now() + make_interval(secs => p_ttl_seconds))
    ON CONFLICT (page_id) DO NOTHING;
    RETURN FOUND;
END
$$;

-- Releases the page's lock if `holder` holds it.
CREATE FUNCTION release_sync_lock(p_page_id TEXT, p_holder TEXT)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sync_locks WHERE page_id = p_page_id AND locked_by = p_holder;
    RETURN FOUND;
END
$$;

-- Pushes the expiry of `holder`'s lock further out (a long sync calls this between batches).
CREATE FUNCTION extend_sync_lock(p_page_id TEXT, p_holder TEXT, p_ttl_seconds INTEGER DEFAULT 300)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sync_locks SET expires_at = now() + make_interval(secs => p_ttl_seconds)
    WHERE page_id = p_page_id AND locked_by = p_holder AND expires_at >= now();
    RETURN FOUND;
END
$$;

-- Removes expired locks; returns how many.
CREATE FUNCTION cleanup_expired_locks()
RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    removed INTEGER;
BEGIN
    DELETE FROM sync_locks WHERE expires_at < now();
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END
$$;

-- Creates or updates one conversation and inserts its events, all or nothing. With
-- p_expected_version, an update of a row changed meanwhile fails (SQLSTATE 40001).
-- Events already recorded are skipped (the unique indexes on contact_interaction_events).
CREATE FUNCTION upsert_conversation_with_events(p_page_id TEXT, p_sender_id TEXT, p_sender_name TEXT,
                                                p_last_message TEXT, p_last_message_at TIMESTAMPTZ,
                                                p_events JSONB DEFAULT '[]', p_expected_version INTEGER DEFAULT NULL)
RETURNS JSONB LANGUAGE plpgsql AS $$
DECLARE
    conv_id   INTEGER;
    conv_ver  INTEGER;
    inserted  INTEGER;
BEGIN
    SELECT id, version INTO conv_id, conv_ver FROM messenger_conversations
    WHERE page_id = p_page_id AND sender_id = p_sender_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO messenger_conversations (page_id, sender_id, sender_name, last_message, last_message_at)
        VALUES (p_page_id, p_sender_id, p_sender_name, p_last_message, p_last_message_at)
        RETURNING id, version INTO conv_id, conv_ver;
    ELSE
        IF p_expected_version IS NOT NULL AND conv_ver <> p_expected_version THEN
            RAISE EXCEPTION 'conversation %/% is at version %, not %', p_page_id, p_sender_id, conv_ver, p_expected_version
                USING ERRCODE = '40001';
        END IF;
        UPDATE messenger_conversations
        SET sender_name = coalesce(p_sender_name, sender_name), last_message = p_last_message,
            last_message_at = p_last_message_at, version = version + 1, updated_at = now()
        WHERE id = conv_id
        RETURNING version INTO conv_ver;
    END IF;
    INSERT INTO contact_interaction_events (conversation_id, event_type, message_id, event_timestamp, payload)
    SELECT conv_id, e->>'event_type', e->>'message_id', (e->>'event_timestamp')::timestamptz,
           coalesce(e->'payload', '{}')
    FROM jsonb_array_elements(p_events) e
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN jsonb_build_object('conversation_id', conv_id, 'version', conv_ver, 'events_inserted', inserted);
END
$$;

-- Upserts a batch: p_conversations is an array of objects with the arguments above by name.
CREATE FUNCTION bulk_upsert_conversations_with_events(p_page_id TEXT, p_conversations JSONB)
RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    c     JSONB;
    total INTEGER := 0;
BEGIN
    FOR c IN SELECT * FROM jsonb_array_elements(p_conversations) LOOP
        PERFORM upsert_conversation_with_events(p_page_id, c->>'sender_id', c->>'sender_name',
                                                c->>'last_message', (c->>'last_message_at')::timestamptz,
                                                coalesce(c->'events', '[]'));
        total := total + 1;
    END LOOP;
    RETURN total;
END
$$;
