-- Fixture for maintenance.daily, maintenance.weekly and maintenance.monthly: the AI Assistant
-- Platform after migration.platform_tables (the same fixture and migration files), with a year
-- of history: conversations, some untouched for more than six months, their messages,
-- feedback and daily usage. The summary views are left stale, as they are before a refresh.
\ir ../migration/platform_tables.sql
\ir ../migration/platform_tables/003_create_conversations_table.sql
\ir ../migration/platform_tables/004_create_messages_table.sql
\ir ../migration/platform_tables/005_create_feedback_table.sql
\ir ../migration/platform_tables/006_create_usage_metrics_table.sql

-- History is loaded with the timestamp triggers off, so it keeps its own dates.
ALTER TABLE public.messages DISABLE TRIGGER trigger_messages_update_conversation;
ALTER TABLE public.conversations DISABLE TRIGGER trigger_conversations_updated_at;

-- 48 conversations, one started every week for the past year; the last message of each is
-- a day after it started (so 20-odd are more than six months old).
INSERT INTO public.conversations (tenant_id, user_id, title, created_at, updated_at)
SELECT u.tenant_id, u.id, 'Conversation ' || g, now() - (g * 7 || ' days')::interval,
       now() - (g * 7 - 1 || ' days')::interval
FROM generate_series(1, 48) g
JOIN (SELECT id, tenant_id, row_number() OVER (ORDER BY email) - 1 AS n FROM public.users) u ON u.n = g % 4;
INSERT INTO public.messages (conversation_id, role, content, model, tokens_used, created_at)
SELECT c.id, CASE WHEN k % 2 = 1 THEN 'user' ELSE 'assistant' END, 'message ' || k,
       CASE WHEN k % 2 = 0 THEN 'gpt-4o' END, 50 * k, c.created_at + (k || ' minutes')::interval
FROM public.conversations c, generate_series(1, 10) k;
INSERT INTO public.feedback (message_id, user_id, tenant_id, rating, created_at)
SELECT m.id, c.user_id, c.tenant_id, CASE WHEN row_number() OVER () % 4 = 0 THEN -1 ELSE 1 END, m.created_at
FROM public.messages m JOIN public.conversations c ON c.id = m.conversation_id
WHERE m.role = 'assistant' AND m.content IN ('message 2', 'message 6');
SELECT public.increment_usage_metrics(c.tenant_id, c.user_id, m.created_at::date, 1, m.tokens_used, m.tokens_used * 0.00001)
FROM public.messages m JOIN public.conversations c ON c.id = m.conversation_id;

ALTER TABLE public.messages ENABLE TRIGGER trigger_messages_update_conversation;
ALTER TABLE public.conversations ENABLE TRIGGER trigger_conversations_updated_at;
