-- What seed 001's runbooks share about the AI Assistant Platform: its tables, the row level
-- security policies migrations 003-006 create, and the guide's performance-check queries.
local platform = {}

platform.TABLES = { "conversations", "messages", "feedback", "usage_metrics" }

-- "Test RLS Policies": each table's four policies, as migrations 003-006 create them (for
-- re-creating one that went missing; troubleshoot.platform checks they match the migrations').
local OWN_TENANT = "tenant_id IN (SELECT u.tenant_id FROM public.users u WHERE u.id = auth.uid())"
local OWN_CONVERSATION = "conversation_id IN (SELECT c.id FROM public.conversations c WHERE c.user_id = auth.uid())"
platform.POLICIES = {
  conversations = {
    conversations_select = "FOR SELECT USING (" .. OWN_TENANT .. ")",
    conversations_insert = "FOR INSERT WITH CHECK (user_id = auth.uid() AND " .. OWN_TENANT .. ")",
    conversations_update = "FOR UPDATE USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())",
    conversations_delete = "FOR DELETE USING (user_id = auth.uid())",
  },
  messages = {
    messages_select = "FOR SELECT USING (conversation_id IN (SELECT c.id FROM public.conversations c))",
    messages_insert = "FOR INSERT WITH CHECK (" .. OWN_CONVERSATION .. ")",
    messages_update = "FOR UPDATE USING (" .. OWN_CONVERSATION .. ")",
    messages_delete = "FOR DELETE USING (" .. OWN_CONVERSATION .. ")",
  },
  feedback = {
    feedback_select = "FOR SELECT USING (" .. OWN_TENANT .. ")",
    feedback_insert = "FOR INSERT WITH CHECK (user_id = auth.uid())",
    feedback_update = "FOR UPDATE USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())",
    feedback_delete = "FOR DELETE USING (user_id = auth.uid())",
  },
  usage_metrics = {
    usage_metrics_select = "FOR SELECT USING (" .. OWN_TENANT .. ")",
    usage_metrics_insert = "FOR INSERT WITH CHECK (user_id = auth.uid())",
    usage_metrics_update = "FOR UPDATE USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())",
    usage_metrics_delete = "FOR DELETE USING (user_id = auth.uid())",
  },
}

-- "Performance Testing": the guide's two queries under EXPLAIN ANALYZE, the index each should
-- use, and a value for its parameter.
platform.QUERIES = {
  { name = "conversation list", index = "idx_conversations_tenant_archived_updated",
    sql = [[SELECT * FROM public.conversations WHERE tenant_id = $1 AND is_archived = false
            ORDER BY updated_at DESC LIMIT 20]],
    param = "11111111-1111-4111-8111-111111111111" },
  { name = "conversation messages", index = "idx_messages_conversation_created",
    sql = [[SELECT * FROM public.messages WHERE conversation_id = $1 ORDER BY created_at ASC]],
    param = "00000000-0000-4000-8000-000000000000" },
}

--- Runs the performance queries under EXPLAIN ANALYZE (health.explain) and returns one finding
--- per query: { query, index, uses_index, ms, indexes, nodes, ok, problem }. `max_ms` is the
--- time limit; with `index_only`, sequential scans are off for the check (on small or empty
--- tables the planner rightly prefers them: the question is then whether the index CAN serve).
function platform.performance(db, health, max_ms, index_only)
  local findings = {}
  db:transaction(function()
    if index_only then db:exec("SET LOCAL enable_seqscan = off") end
    for _, q in ipairs(platform.QUERIES) do
      local e = health.explain(db, q.sql, q.param)
      local f = { query = q.name, index = q.index, uses_index = health.uses_index(e, q.index), ms = e.ms,
                  indexes = e.indexes, nodes = e.nodes }
      if not f.uses_index then
        f.problem = string.format("%s does not use %s (plan: %s)", q.name, q.index, table.concat(e.nodes, " > "))
      elseif e.ms > max_ms then
        f.problem = string.format("%s took %.2f ms, over the %.2f ms limit", q.name, e.ms, max_ms)
      end
      f.ok = f.problem == nil
      findings[#findings + 1] = f
    end
  end)
  return findings
end

return platform
