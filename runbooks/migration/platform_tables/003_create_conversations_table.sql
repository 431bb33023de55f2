-- 003: conversations, one per chat thread, owned by a user of a tenant.
CREATE TABLE public.conversations (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   UUID NOT NULL REFERENCES public.tenants(id) ON DELETE CASCADE,
    user_id     UUID NOT NULL REFERENCES public.users(id) ON DELETE CASCADE,
    title       TEXT,
    is_archived BOOLEAN NOT NULL DEFAULT false,
    metadata    JSONB NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_conversations_tenant_archived_updated
    ON public.conversations (tenant_id, is_archived, updated_at DESC);
CREATE INDEX idx_conversations_user ON public.conversations (user_id);

CREATE FUNCTION public.update_updated_at_column() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END
$$;
CREATE TRIGGER trigger_conversations_updated_at
    BEFORE UPDATE ON public.conversations
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

-- Row level security: a user sees the conversations of their tenant, changes their own.
ALTER TABLE public.conversations ENABLE ROW LEVEL SECURITY;
CREATE POLICY conversations_select ON public.conversations FOR SELECT
    USING (tenant_id IN (SELECT u.tenant_id FROM public.users u WHERE u.id = auth.uid()));
CREATE POLICY conversations_insert ON public.conversations FOR INSERT
    WITH CHECK (user_id = auth.uid()
                AND tenant_id IN (SELECT u.tenant_id FROM public.users u WHERE u.id = auth.uid()));
CREATE POLICY conversations_update ON public.conversations FOR UPDATE
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY conversations_delete ON public.conversations FOR DELETE
    USING (user_id = auth.uid());
