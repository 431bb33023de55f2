-- 005: thumbs up / down on assistant messages (depends on 004).
CREATE TABLE public.feedback (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    message_id UUID NOT NULL REFERENCES public.messages(id) ON DELETE CASCADE,
    user_id    UUID NOT NULL REFERENCES public.users(id) ON DELETE CASCADE,
    tenant_id  UUID NOT NULL REFERENCES public.tenants(id) ON DELETE CASCADE,
    rating     SMALLINT NOT NULL CHECK (rating IN (-1, 1)),
    comment    TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (message_id, user_id)
);
CREATE INDEX idx_feedback_tenant_created ON public.feedback (tenant_id, created_at DESC);

ALTER TABLE public.feedback ENABLE ROW LEVEL SECURITY;
CREATE POLICY feedback_select ON public.feedback FOR SELECT
    USING (tenant_id IN (SELECT u.tenant_id FROM public.users u WHERE u.id = auth.uid()));
CREATE POLICY feedback_insert ON public.feedback FOR INSERT
    WITH CHECK (user_id = auth.uid());
CREATE POLICY feedback_update ON public.feedback FOR UPDATE
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY feedback_delete ON public.feedback FOR DELETE
    USING (user_id = auth.uid());

-- Per-message totals for the dashboards; the unique index lets it refresh CONCURRENTLY.
CREATE MATERIALIZED VIEW public.message_feedback_summary AS
SELECT message_id,
       count(*) FILTER (WHERE rating = 1)  AS positive,
       count(*) FILTER (WHERE rating = -1) AS negative,
       round(avg(rating), 2)               AS avg_rating,
       max(created_at)                     AS last_feedback_at
FROM public.feedback
GROUP BY message_id;
CREATE UNIQUE INDEX idx_message_feedback_summary_message ON public.message_feedback_summary (message_id);
