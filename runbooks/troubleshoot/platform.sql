-- Fixture for troubleshoot.platform: the platform tables with a year of history (the
-- maintenance fixture), and two of the guide's RLS problems: row level security turned off on
-- feedback, and usage_metrics' DELETE policy gone. (An INVALID index needs a failed CREATE
-- INDEX CONCURRENTLY, which a fixture script cannot leave behind: the tests make one.)
\ir ../maintenance/platform.sql

ALTER TABLE public.feedback DISABLE ROW LEVEL SECURITY;
DROP POLICY usage_metrics_delete ON public.usage_metrics;
ANALYZE;
