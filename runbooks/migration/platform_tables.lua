-- Seed 001 (Migration Execution Guide): apply migrations 003-006 of the AI Assistant Platform
-- (conversations, messages, feedback, usage_metrics) in deployment order, one step per
-- migration with the guide's DROP statements as its rollback; then the guide's verification
-- steps (tables, indexes, RLS policies, foreign keys, materialized views, tenant isolation,
-- and 7. "Performance Testing": its two queries under EXPLAIN ANALYZE, each on its index and
-- within `max_query_ms`) and its post-migration tasks (refresh, ANALYZE). A failed
-- verification drops everything the migrations created, newest first. Troubleshooting
-- "Relation Already Exists": a migration whose table is there is skipped, the reason audited.
local health = require "health"
local platform = require "platform"
local TABLES = platform.TABLES

local function count(ctx, sql, ...) return ctx.db:scalar(sql, ...) end

--- A `when` for migration `number`: skip it when its table already exists ("Either skip
--- migration or drop table first": we skip; dropping is for a person to decide).
local function unless_exists(tbl, number)
  return function(ctx)
    if ctx.db:scalar("SELECT to_regclass($1) IS NOT NULL", "public." .. tbl) then
      return string.format("relation public.%s already exists: migration %s was applied before", tbl, number)
    end
    return true
  end
end

runbook "migration.platform_tables" {
  title = "Create the platform tables (migrations 003-006)",
  description = "Creates conversations, messages, feedback and usage_metrics with their indexes, "
             .. "row level security, triggers and summary views, then verifies them.",
  tags = { "migration", "seed-001" },
  fixture = "platform_tables.sql",
  lock = true,
  params = {
    policies_per_table = { type = "integer", default = 4,
                           doc = "RLS policies each table must have (SELECT, INSERT, UPDATE, DELETE)" },
    max_query_ms = { type = "number", default = 50,
                     doc = "performance check: the most a query of the guide may take (EXPLAIN ANALYZE), in ms" },
    app_role = { type = "string", default = "authenticated",
                 doc = "the role the application's users query as, for the tenant isolation test" },
  },

  phase "preflight" {
    step "tenants and users exist" {
      run = function(ctx)
        for _, t in ipairs { "tenants", "users" } do
          check(ctx.db:scalar("SELECT to_regclass($1) IS NOT NULL", "public." .. t),
                "public.%s is missing: the platform tables reference it", t)
        end
        check(count(ctx, "SELECT count(*) FROM public.tenants") > 0, "no tenants: nothing to test isolation with")
      end,
    },
  },

  phase "migrate" {
    transaction = true,
    step "003 conversations" {
      when = unless_exists("conversations", "003"),
      run = function(ctx) ctx.db:script("platform_tables/003_create_conversations_table.sql") end,
      rollback = function(ctx)
        ctx.db:script [[
          DROP TRIGGER IF EXISTS trigger_conversations_updated_at ON public.conversations;
          DROP FUNCTION IF EXISTS public.update_updated_at_column();
          DROP TABLE IF EXISTS public.conversations CASCADE;]]
      end,
    },
    step "004 messages" {
      when = unless_exists("messages", "004"),
      run = function(ctx) ctx.db:script("platform_tables/004_create_messages_table.sql") end,
      rollback = function(ctx)
        ctx.db:script [[
          DROP TRIGGER IF EXISTS trigger_messages_update_conversation ON public.messages;
          DROP FUNCTION IF EXISTS public.update_conversation_timestamp();
          DROP TABLE IF EXISTS public.messages CASCADE;]]
      end,
    },
    step "005 feedback" {
      when = unless_exists("feedback", "005"),
      run = function(ctx) ctx.db:script("platform_tables/005_create_feedback_table.sql") end,
      rollback = function(ctx)
        ctx.db:script [[
          DROP MATERIALIZED VIEW IF EXISTS public.message_feedback_summary CASCADE;
          DROP TABLE IF EXISTS public.feedback CASCADE;]]
      end,
    },
    step "006 usage_metrics" {
      when = unless_exists("usage_metrics", "006"),
      run = function(ctx) ctx.db:script("platform_tables/006_create_usage_metrics_table.sql") end,
      rollback = function(ctx)
        ctx.db:script [[
          DROP VIEW IF EXISTS public.current_day_usage;
          DROP MATERIALIZED VIEW IF EXISTS public.monthly_usage_summary CASCADE;
          DROP FUNCTION IF EXISTS public.increment_usage_metrics(UUID, UUID, DATE, INTEGER, INTEGER, DECIMAL);
          DROP TABLE IF EXISTS public.usage_metrics CASCADE;]]
      end,
    },
  },

  phase "verify" {
    step "tables" {
      run = function(ctx)
        local n = count(ctx, [[SELECT count(*) FROM information_schema.tables
                               WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
                                 AND table_name = ANY($1::text[])]], "{" .. table.concat(TABLES, ",") .. "}")
        check(n == #TABLES, "only %d of the %d platform tables exist", n, #TABLES)
      end,
    },
    step "indexes" {
      run = function(ctx)
        for _, name in ipairs { "idx_conversations_tenant_archived_updated", "idx_conversations_user",
                                "idx_messages_conversation_created", "idx_feedback_tenant_created",
                                "idx_usage_metrics_tenant_date", "idx_message_feedback_summary_message",
                                "idx_monthly_usage_summary_tenant_month" } do
          check(count(ctx, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND indexname = $1", name) == 1,
                "index %s is missing", name)
        end
      end,
    },
    step "RLS policies" {
      run = function(ctx)
        local found = {}
        for _, t in ipairs(TABLES) do
          check(count(ctx, "SELECT relrowsecurity FROM pg_class WHERE oid = $1::regclass", "public." .. t),
                "row level security is not enabled on %s", t)
          local row = ctx.db:query([[SELECT count(*) AS policies, count(DISTINCT cmd) AS commands
                                     FROM pg_policies WHERE schemaname = 'public' AND tablename = $1]], t)[1]
          check(row.policies == ctx.params.policies_per_table and row.commands == row.policies,
                "%s has %d RLS policies over %d commands; expected %d (SELECT, INSERT, UPDATE, DELETE)",
                t, row.policies, row.commands, ctx.params.policies_per_table)
          found[t] = row.policies
        end
        return found
      end,
    },
    step "foreign keys" {
      run = function(ctx)
        local fks = ctx.db:query([[
          SELECT conrelid::regclass::text AS tbl, confrelid::regclass::text AS refs
          FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace]])
        local have = {}
        for _, fk in ipairs(fks) do have[fk.tbl .. "->" .. fk.refs] = true end
        for _, want in ipairs { "conversations->tenants", "conversations->users", "messages->conversations",
                                "feedback->messages", "feedback->users", "feedback->tenants",
                                "usage_metrics->tenants", "usage_metrics->users" } do
          check(have[want], "foreign key %s is missing", want)
        end
        return { foreign_keys = #fks }
      end,
    },
    step "materialized views" {
      run = function(ctx)
        for _, mv in ipairs { "message_feedback_summary", "monthly_usage_summary" } do
          check(count(ctx, "SELECT count(*) FROM pg_matviews WHERE schemaname = 'public' AND matviewname = $1", mv) == 1,
                "materialized view %s is missing", mv)
        end
        check(count(ctx, "SELECT to_regclass('public.current_day_usage') IS NOT NULL"), "view current_day_usage is missing")
      end,
    },
    step "tenant isolation" {
      -- The guide's RLS test: as the application's role, a user sees only their tenant's rows.
      -- Two smoke-test conversations are created and removed again in one transaction.
      run = function(ctx)
        ctx.db:transaction(function()
          local users = ctx.db:query([[SELECT DISTINCT ON (tenant_id) id, tenant_id FROM public.users
                                       ORDER BY tenant_id, id LIMIT 2]])
          check(#users == 2, "tenant isolation needs users in two tenants, found %d", #users)
          for _, u in ipairs(users) do
            ctx.db:exec("INSERT INTO public.conversations (tenant_id, user_id, title) VALUES ($1, $2, 'runbook smoke test')",
                        u.tenant_id, u.id)
          end
          ctx.db:exec("SELECT set_config('role', $1, true), set_config('request.jwt.claim.sub', $2, true)",
                      ctx.params.app_role, users[1].id)
          local seen = ctx.db:query("SELECT tenant_id FROM public.conversations WHERE title = 'runbook smoke test'")
          ctx.db:exec("RESET ROLE")
          check(#seen == 1 and seen[1].tenant_id == users[1].tenant_id,
                "RLS leak: a user of tenant %s sees %d smoke-test conversations (expected only their own tenant's)",
                users[1].tenant_id, #seen)
          ctx.db:exec("DELETE FROM public.conversations WHERE title = 'runbook smoke test'")
        end)
      end,
    },
    step "query performance" {
      -- On freshly created (empty) tables the planner would rightly pick a sequential scan, so
      -- those are off for the check: the question is whether each index CAN serve its query.
      run = function(ctx)
        local findings = platform.performance(ctx.db, health, ctx.params.max_query_ms, true)
        audit.note("query performance", { queries = findings, max_ms = ctx.params.max_query_ms })
        for _, f in ipairs(findings) do check(f.ok, "%s", f.problem) end
        return { queries = findings }
      end,
    },
  },

  phase "post-migration" {
    step "refresh materialized views" {
      run = function(ctx)
        ctx.db:exec("REFRESH MATERIALIZED VIEW public.message_feedback_summary")
        ctx.db:exec("REFRESH MATERIALIZED VIEW public.monthly_usage_summary")
      end,
    },
    step "update statistics" {
      run = function(ctx)
        for _, t in ipairs(TABLES) do ctx.db:exec("ANALYZE public." .. t) end  -- our names, not input
        audit.note("platform tables created", { tables = TABLES })
      end,
    },
  },
}
