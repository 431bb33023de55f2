-- Seed 000 (Error Handling Guide & Rollback Procedures), "Partial Rollback (Specific
-- Components)": undo only the user part of migration.centralized, keeping conversations.
-- Users are backed up to partial_rollback_users, the migrated users deleted, and their
-- conversations handed to the placeholder MIGRATION_UNKNOWN_USER.
--
-- Two departures from the guide's SQL, both needed for it to work on the centralized schema:
--  * conversations (and user_queries, whose user_id is a foreign key to users) are relinked
--    BEFORE the users are deleted: deleting first fails on that foreign key;
--  * the placeholder itself is kept: it is marked migrated_from_reactions too, and deleting it
--    would leave the relinked conversations pointing at nobody.
-- The old links are saved to partial_rollback_links, so the run's own rollback can restore them.
--
-- Fixture: rollback_users.sql loads centralized.sql (migration.centralized's fixture) and then
-- puts it in the state that migration leaves, so this runbook can be tried on its own.
local health = require "health"

local MIGRATED = "platform_metadata->>'migrated_from_reactions' = 'true' AND platform_user_id <> 'MIGRATION_UNKNOWN_USER'"

runbook "migration.rollback_users" {
  title = "Partial rollback: migrated users only",
  description = "Deletes the users migration.centralized created (after backing them up) and hands "
             .. "their conversations to MIGRATION_UNKNOWN_USER; conversations and messages stay.",
  tags = { "migration", "rollback", "seed-000" },
  fixture = "rollback_users.sql",
  lock = true,

  phase "preflight" {
    step "migrated users exist" {
      run = function(ctx)
        local n = ctx.db:scalar("SELECT count(*) FROM users WHERE " .. MIGRATED)
        check(n > 0, "no migrated users: nothing to roll back")
        return { migrated_users = n }
      end,
    },
    step "placeholder user exists" {
      run = function(ctx)
        check(ctx.db:scalar([[SELECT count(*) FROM users
                              WHERE platform = 'slack' AND platform_user_id = 'MIGRATION_UNKNOWN_USER']]) == 1,
              "user MIGRATION_UNKNOWN_USER is missing: conversations would have no owner")
      end,
    },
    step "no earlier backup" {
      run = function(ctx)
        for _, t in ipairs { "partial_rollback_users", "partial_rollback_links" } do
          check(not health.table_exists(ctx.db, t), "%s exists from an earlier rollback: inspect it and drop it first", t)
        end
      end,
    },
  },

  phase "rollback users" {
    transaction = true,
    step "backup" {
      run = function(ctx)
        ctx.db:exec("CREATE TABLE partial_rollback_users AS SELECT * FROM users")
        ctx.db:exec([[CREATE TABLE partial_rollback_links AS
                      SELECT 'conversations' AS tbl, id, user_id FROM conversations
                      UNION ALL SELECT 'user_queries', id, user_id FROM user_queries]])
        return { users = ctx.db:scalar("SELECT count(*) FROM partial_rollback_users") }
      end,
      rollback = function(ctx)
        ctx.db:exec("DROP TABLE IF EXISTS partial_rollback_users")
        ctx.db:exec("DROP TABLE IF EXISTS partial_rollback_links")
      end,
    },
    step "relink to MIGRATION_UNKNOWN_USER" {
      confirm = "Hands every conversation and query of a migrated user to MIGRATION_UNKNOWN_USER",
      run = function(ctx)
        local unknown = ctx.db:scalar("SELECT id FROM users WHERE platform = 'slack' AND platform_user_id = 'MIGRATION_UNKNOWN_USER'")
        local moved = 0
        for _, t in ipairs { "conversations", "user_queries" } do  -- our names, not input
          moved = moved + ctx.db:exec("UPDATE " .. t .. " SET user_id = $1 WHERE user_id IN (SELECT id FROM users WHERE "
                                      .. MIGRATED .. ")", unknown)
        end
        return { relinked = moved }
      end,
      rollback = function(ctx)
        for _, t in ipairs { "conversations", "user_queries" } do
          ctx.db:exec("UPDATE " .. t .. " x SET user_id = l.user_id FROM partial_rollback_links l WHERE l.tbl = $1 AND l.id = x.id", t)
        end
      end,
    },
    step "delete migrated users" {
      confirm = "Deletes every user created by the centralized migration (backed up in partial_rollback_users)",
      run = function(ctx) return { deleted = ctx.db:exec("DELETE FROM users WHERE " .. MIGRATED) } end,
      verify = function(ctx)
        check(ctx.db:scalar("SELECT count(*) FROM users WHERE " .. MIGRATED) == 0, "migrated users remain")
      end,
      rollback = function(ctx)
        ctx.db:exec([[INSERT INTO users SELECT * FROM partial_rollback_users b
                      WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = b.id)]])
      end,
    },
  },

  phase "verify" {
    step "every conversation has an owner" {
      run = function(ctx)
        local conversations = health.orphans(ctx.db, "conversations", "user_id", "users")
        local queries = health.orphans(ctx.db, "user_queries", "user_id", "users")
        check(conversations + queries == 0, "%d conversations and %d queries point at deleted users", conversations, queries)
        check(ctx.db:scalar("SELECT count(*) FROM conversations WHERE user_id IS NULL") == 0, "conversations without an owner")
        local row = ctx.db:query([[SELECT (SELECT count(*) FROM users) AS users_left,
                                          (SELECT count(*) FROM partial_rollback_users) AS backed_up,
                                          (SELECT count(*) FROM conversations c JOIN users u ON u.id = c.user_id
                                            WHERE u.platform_user_id = 'MIGRATION_UNKNOWN_USER') AS placeholder_conversations]])[1]
        audit.note("partial rollback of users done", row)
      end,
    },
  },
}
