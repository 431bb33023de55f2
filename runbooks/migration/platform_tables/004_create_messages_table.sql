-- 004: messages of a conversation (depends on 003).
CREATE TABLE public.messages (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id UUID NOT NULL REFERENCES public.conversations(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content         TEXT NOT NULL,
    model           TEXT,
    tokens_used     INTEGER NOT NULL DEFAULT 0,
    metadata        JSONB NOT NULL DEFAULT '{}',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- The conversation view reads a conversation's messages in order: this index serves it.
CREATE INDEX idx_messages_conversation_created ON public.messages (conversation_id, created_at);

-- A new message makes its conversation the most recently updated.
CREATE FUNCTION public.update_conversation_timestamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE public.conversations SET updated_at = now() WHERE id = NEW.conversation_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER trigger_messages_update_conversation
    AFTER INSERT ON public.messages
    FOR EACH ROW EXECUTE FUNCTION public.update_conversation_timestamp();

-- Row level security: messages follow their conversation (whose own policies apply).
ALTER TABLE public.messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY messages_select ON public.messages FOR SELECT
    USING (conversation_id IN (SELECT c.id FROM public.conversations c));
CREATE POLICY messages_insert ON public.messages FOR INSERT
    WITH CHECK (conversation_id IN (SELECT c.id FROM public.conversations c WHERE c.user_id = auth.uid()));
CREATE POLICY messages_update ON public.messages FOR UPDATE
    USING (conversation_id IN (SELECT c.id FROM public.conversations c WHERE c.user_id = auth.uid()));
CREATE POLICY messages_delete ON public.messages FOR DELETE
    USING (conversation_id IN (SELECT c.id FROM public.conversations c WHERE c.user_id = auth.uid()));
