-- 006: daily usage per user (independent of 003-005).
CREATE TABLE public.usage_metrics (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      UUID NOT NULL REFERENCES public.tenants(id) ON DELETE CASCADE,
    user_id        UUID NOT NULL REFERENCES public.users(id) ON DELETE CASCADE,
    date           DATE NOT NULL DEFAULT current_date,
    message_count  INTEGER NOT NULL DEFAULT 0,
    total_tokens   INTEGER NOT NULL DEFAULT 0,
    estimated_cost DECIMAL(12, 6) NOT NULL DEFAULT 0,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, user_id, date)
);
CREATE INDEX idx_usage_metrics_tenant_date ON public.usage_metrics (tenant_id, date DESC);

ALTER TABLE public.usage_metrics ENABLE ROW LEVEL SECURITY;
CREATE POLICY usage_metrics_select ON public.usage_metrics FOR SELECT
    USING (tenant_id IN (SELECT u.tenant_id FROM public.users u WHERE u.id = auth.uid()));
CREATE POLICY usage_metrics_insert ON public.usage_metrics FOR INSERT
    WITH CHECK (user_id = auth.uid());
CREATE POLICY usage_metrics_update ON public.usage_metrics FOR UPDATE
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY usage_metrics_delete ON public.usage_metrics FOR DELETE
    USING (user_id = auth.uid());

-- Adds one exchange to a user's day, creating the row on first use.
CREATE FUNCTION public.increment_usage_metrics(p_tenant_id UUID, p_user_id UUID, p_date DATE,
                                               p_messages INTEGER, p_tokens INTEGER, p_cost DECIMAL)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO public.usage_metrics (tenant_id, user_id, date, message_count, total_tokens, estimated_cost)
    VALUES (p_tenant_id, p_user_id, p_date, p_messages, p_tokens, p_cost)
    ON CONFLICT (tenant_id, user_id, date) DO UPDATE
    SET message_count  = usage_metrics.message_count + EXCLUDED.message_count,
        total_tokens   = usage_metrics.total_tokens + EXCLUDED.total_tokens,
        estimated_cost = usage_metrics.estimated_cost + EXCLUDED.estimated_cost,
        updated_at     = now();
$$;

-- Monthly totals per tenant; the unique index lets it refresh CONCURRENTLY.
CREATE MATERIALIZED VIEW public.monthly_usage_summary AS
SELECT tenant_id,
       date_trunc('month', date)::date AS month,
       count(DISTINCT user_id)         AS active_users,
       sum(message_count)              AS messages,
       sum(total_tokens)               AS tokens,
       sum(estimated_cost)             AS cost
FROM public.usage_metrics
GROUP BY tenant_id, date_trunc('month', date);
CREATE UNIQUE INDEX idx_monthly_usage_summary_tenant_month ON public.monthly_usage_summary (tenant_id, month);

CREATE VIEW public.current_day_usage AS
SELECT tenant_id, count(DISTINCT user_id) AS active_users, sum(message_count) AS messages,
       sum(total_tokens) AS tokens, sum(estimated_cost) AS cost
FROM public.usage_metrics
WHERE date = current_date
GROUP BY tenant_id;
