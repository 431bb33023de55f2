-- Seed 001 (Migration Execution Guide), "Scheduled Maintenance - Monthly Tasks": archive the
-- conversations nobody has touched for `months` months. Archiving is a flag, so it can be
-- undone: each archived conversation records the run that archived it (metadata
-- archived_by_run) and its last activity (metadata last_activity_at: the updated_at trigger
-- stamps the archiving itself as an update). The seed's export of old usage metrics to the
-- data warehouse depends on the warehouse and is not part of this runbook.
-- Runs on the first of every month at 05:00 UTC under `runbook schedule` (scheduled runs are
-- confirmed: `runbook schedule` starts them with --yes).
runbook "maintenance.monthly" {
  title = "Monthly maintenance: archive old conversations",
  description = "Marks conversations without activity for `months` months as archived.",
  tags = { "maintenance", "monthly", "seed-001" },
  fixture = "platform.sql",
  lock = true,
  schedule = { cron = "0 5 1 * *", tz = "UTC", missed = "once" },
  params = {
    months = { type = "integer", default = 6, doc = "archive conversations not updated for this many months" },
  },

  step "find old conversations" {
    run = function(ctx)
      check(ctx.params.months >= 1, "months must be at least 1, not %d", ctx.params.months)
      local n = ctx.db:scalar([[SELECT count(*) FROM public.conversations
                                WHERE updated_at < CURRENT_DATE - make_interval(months => $1) AND is_archived = false]],
                              ctx.params.months)
      audit.note("conversations to archive", { count = n, months = ctx.params.months })
      return { candidates = n }
    end,
  },
  step "archive" {
    confirm = "Archives conversations without activity for the given number of months (users no longer see them)",
    run = function(ctx)
      local n = ctx.db:exec([[
        UPDATE public.conversations
        SET is_archived = true,
            metadata = metadata || jsonb_build_object('archived_by_run', $2::text, 'last_activity_at', updated_at)
        WHERE updated_at < CURRENT_DATE - make_interval(months => $1) AND is_archived = false]],
        ctx.params.months, ctx.run)
      return { archived = n }
    end,
    verify = function(ctx, result)
      local n = ctx.db:scalar("SELECT count(*) FROM public.conversations WHERE metadata->>'archived_by_run' = $1", ctx.run)
      check(n == result.archived, "%d conversations carry this run's mark, but %d were archived", n, result.archived)
    end,
    rollback = function(ctx)
      -- Restores the rows exactly as they were, updated_at included: the updated_at trigger
      -- would stamp the undo as fresh activity, so it is off for this one statement (in one
      -- transaction: if anything fails, the trigger is back on with everything else).
      ctx.db:transaction(function()
        ctx.db:exec("ALTER TABLE public.conversations DISABLE TRIGGER trigger_conversations_updated_at")
        ctx.db:exec([[UPDATE public.conversations
                      SET is_archived = false,
                          updated_at = (metadata->>'last_activity_at')::timestamptz,
                          metadata = metadata - 'archived_by_run' - 'last_activity_at'
                      WHERE metadata->>'archived_by_run' = $1]], ctx.run)
        ctx.db:exec("ALTER TABLE public.conversations ENABLE TRIGGER trigger_conversations_updated_at")
      end)
    end,
  },
}
