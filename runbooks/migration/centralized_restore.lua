-- Seed 000 (Error Handling Guide & Rollback Procedures), "Rollback Procedures" 1. Complete
-- Migration Rollback, from a backup migration.centralized took (the file its "full backup"
-- step names; its "critical data backup" works too, for the old tables):
--  Step 1  backup current state for analysis: rollback_backup_<table> copies (kept afterwards);
--  Step 2/3 restore the tables from the backup file (TRUNCATE, then pg_restore of their rows in
--          one transaction; if that fails the rows are put back from the step 1 copies);
--  Step 4  verify the rollback: messages and conversations are back, no migrated user is left
--          (when it fails, the rows are put back from the step 1 copies: the run ends rolled back);
--  Step 5  "clean up new schema tables": here the new tables existed, empty, before the
--          migration, so restoring their rows from the backup is the clean-up.
-- One departure: messages is copied in step 1 too (TRUNCATE ... CASCADE of conversations
-- reaches it). A ROLLBACK row goes to migration_log.
--
-- Fixture: the state migration.centralized leaves (migration.rollback_users's); a sandbox run
-- needs --param dump=FILE of a backup of that schema.
local backup = require "backup"
local health = require "health"

-- The seed's tables, in an order their rows can go back in (foreign keys).
local TABLES = { "users", "conversations", "messages", "message_reactions", "user_queries", "bot_responses" }

local function put_back_from_snapshot(ctx)
  ctx.db:transaction(function()
    ctx.db:exec("TRUNCATE " .. table.concat(TABLES, ", ") .. " CASCADE")
    for _, t in ipairs(TABLES) do  -- our names, not input
      ctx.db:exec("INSERT INTO " .. t .. " SELECT * FROM rollback_backup_" .. t)
    end
  end)
end

runbook "migration.centralized_restore" {
  title = "Complete rollback of the centralized migration from its backup",
  description = "Snapshots the current tables, then restores users, conversations, messages, reactions, "
             .. "queries and responses from a backup file taken before the migration.",
  tags = { "migration", "rollback", "seed-000" },
  fixture = "rollback_users.sql",
  lock = true,
  -- Kept on purpose: the snapshot for analysis, and the ROLLBACK row (rehearse notes them).
  log_tables = { "migration_log", "rollback_backup_*" },
  params = {
    dump = { type = "string", required = true, doc = "the backup (pg_dump -Fc) migration.centralized took before migrating" },
  },

  phase "preflight" {
    step "the backup reads" {
      run = function(ctx)
        local _, listing = shell.run { db.pg_bin("pg_restore"), "--list", ctx.params.dump, check = true }
        local found = {}
        for _, t in ipairs(TABLES) do
          if listing:find("TABLE DATA public " .. t .. " ", 1, true) then found[#found + 1] = t end
        end
        check(#found > 0, "%s holds the rows of none of the tables %s", ctx.params.dump, table.concat(TABLES, ", "))
        return { tables = found }
      end,
    },
    step "no earlier snapshot" {
      run = function(ctx)
        for _, t in ipairs(TABLES) do
          check(not health.table_exists(ctx.db, "rollback_backup_" .. t),
                "rollback_backup_%s exists from an earlier rollback: inspect it and drop it first", t)
        end
      end,
    },
  },

  phase "snapshot" {
    transaction = true,
    step "backup current state for analysis" {
      run = function(ctx)
        local rows = {}
        for _, t in ipairs(TABLES) do
          rows[t] = ctx.db:exec("CREATE TABLE rollback_backup_" .. t .. " AS SELECT * FROM " .. t)
        end
        return rows
      end,
    },
  },

  phase "restore" {
    step "restore from the backup" {
      confirm = "Replaces every row of users, conversations, messages, message_reactions, user_queries and "
             .. "bot_responses with the backup's (the current rows stay in rollback_backup_*)",
      run = function(ctx)
        ctx.db:exec("TRUNCATE " .. table.concat(TABLES, ", ") .. " CASCADE")
        local ok, err = pcall(backup.restore, ctx, { file = ctx.params.dump, data_only = true, tables = TABLES })
        if not ok then
          put_back_from_snapshot(ctx)
          error(err, 0)
        end
      end,
      -- A restore that went through but fails its verification is undone the same way: the rows
      -- go back to what they were before it, from the snapshot (which stays for analysis).
      rollback = put_back_from_snapshot,
    },
    step "verify rollback" {
      run = function(ctx)
        local n = ctx.db:query([[SELECT (SELECT count(*) FROM messages) AS messages,
                                        (SELECT count(*) FROM conversations) AS conversations,
                                        (SELECT count(*) FROM message_reactions) AS reactions,
                                        (SELECT count(*) FROM users WHERE platform_metadata->>'migrated_from_reactions' = 'true') AS migrated_users]])[1]
        check(n.messages > 0 and n.conversations > 0, "Rollback verification failed: Missing data in restored tables")
        check(n.migrated_users == 0, "%d migrated users are still there: was %s taken after the migration?",
              n.migrated_users, ctx.params.dump)
        if health.table_exists(ctx.db, "migration_log") then
          ctx.db:exec([[INSERT INTO migration_log (step_name, status, message, records_affected)
                        VALUES ('complete_rollback', 'ROLLBACK', $1, $2)]], "Restored from " .. ctx.params.dump, n.messages)
        end
        audit.note("rollback completed", n)
        return n
      end,
    },
  },
}
