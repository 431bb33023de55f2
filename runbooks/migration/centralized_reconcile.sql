-- Fixture for migration.centralized_reconcile: the state migration.centralized leaves (the
-- fixture of migration.rollback_users), with 3 user queries and 2 bot responses lost.
\ir rollback_users.sql

DELETE FROM user_queries WHERE id IN (SELECT id FROM user_queries ORDER BY id LIMIT 3);
DELETE FROM bot_responses WHERE id IN (SELECT id FROM bot_responses ORDER BY id DESC LIMIT 2);
