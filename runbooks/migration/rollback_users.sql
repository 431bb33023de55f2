-- Fixture for migration.rollback_users: the state migration.centralized leaves behind. The old
-- Slack schema and the empty centralized tables come from centralized.sql (its fixture); the
-- statements below then do what that migration does (users from the Slack ids, a placeholder
-- MIGRATION_UNKNOWN_USER, conversation owners, queries and responses), and add one user who
-- signed up on the web afterwards and must survive the partial rollback.
\ir centralized.sql

INSERT INTO users (platform, platform_user_id, username, display_name, platform_metadata)
SELECT DISTINCT 'slack'::platform_type, u, u, u, jsonb_build_object('migrated_from_reactions', true)
FROM (SELECT slack_user_id AS u FROM message_reactions UNION SELECT slack_user_id FROM messages) s
WHERE u IS NOT NULL;
INSERT INTO users (platform, platform_user_id, display_name, platform_metadata)
VALUES ('slack', 'MIGRATION_UNKNOWN_USER', 'Unknown (migrated)', '{"migrated_from_reactions": true}');
UPDATE conversations c SET user_id = coalesce(
    (SELECT u.id FROM messages m JOIN users u ON u.platform = 'slack' AND u.platform_user_id = m.slack_user_id
      WHERE m.conversation_id = c.id ORDER BY m.created_at LIMIT 1),
    (SELECT id FROM users WHERE platform = 'slack' AND platform_user_id = 'MIGRATION_UNKNOWN_USER'));
INSERT INTO user_queries (id, conversation_id, user_id, content, created_at)
SELECT m.id, m.conversation_id, c.user_id, m.content, m.created_at
FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.message_type = 'user_query';
INSERT INTO bot_responses (id, conversation_id, content, error_message, created_at)
SELECT id, conversation_id, content, error_message, created_at FROM messages WHERE message_type = 'bot_response';
INSERT INTO migration_log (step_name, status, message) VALUES ('users', 'SUCCESS', 'Migrated users');

-- Life after the migration: a web user with a conversation of their own.
INSERT INTO users (platform, platform_user_id, username, display_name)
VALUES ('web', 'web-0001', 'grace', 'Grace');
INSERT INTO conversations (slack_channel, user_id)
SELECT 'web', id FROM users WHERE platform_user_id = 'web-0001';
