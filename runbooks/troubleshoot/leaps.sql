-- Fixture for the troubleshoot.* playbooks: the MS Elevate LEAPS tracker -- participants,
-- activities, submissions, the points ledger, attachments, Kajabi webhook events and the
-- leaderboard view -- after a bad partial restore. There are no foreign keys (they were
-- dropped for the restore), and the data holds what the playbooks look for:
--   orphans:    3 submissions of a deleted user, 1 of a retired activity, 4 points of the
--               deleted user, 2 attachments of deleted submissions (and 2 of the orphaned
--               submissions, which become orphans when those go);
--   duplicates: 2 users with two live LEARN submissions each, 3 Kajabi events credited twice;
--   a stale leaderboard: points awarded after its last refresh;
--   points:     2 approved PRESENT submissions never credited (user_09, user_10), a negative
--               total (user_11: a manual -100);
--   amplify:    user_12 at 48 of the 50 peers the check_amplify_quota trigger allows in 7 days;
--   roles:      3 users whose role is not one of the four, 'admin', 'Reviewer ' and 'participant'
--               (users_role_check, which would have refused them, was lost in the restore);
--   user sync:  user_deleted, whose work is there but whose user row is not;
--   webhooks:   an unprocessed Kajabi event for ben.lee@school.test (user_21) received twice,
--               and one for an address no user has;
--   email:      an event marked NO_USER_FOUND for amira.tan@school.test, whose user row says
--               Amira.Tan@School.test (user_20);
--   analytics:  activity_metrics never populated (refresh_all_analytics() fills it).
CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    handle     TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    email      TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL DEFAULT 'PARTICIPANT',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE activities (
    code           TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    default_points INTEGER NOT NULL
);
CREATE TABLE submissions (
    id            TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    user_id       TEXT NOT NULL,
    activity_code TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED')),
    payload       JSONB NOT NULL DEFAULT '{}',
    review_note   TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_submissions_user ON submissions (user_id);
CREATE INDEX idx_submissions_activity_status ON submissions (activity_code, status);
CREATE TABLE points_ledger (
    id                TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    user_id           TEXT NOT NULL,
    activity_code     TEXT NOT NULL,
    source            TEXT NOT NULL CHECK (source IN ('FORM', 'WEBHOOK', 'MANUAL', 'RECONCILIATION')),
    delta_points      INTEGER NOT NULL,
    external_source   TEXT,
    external_event_id TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_points_ledger_user ON points_ledger (user_id);
CREATE INDEX idx_points_ledger_external ON points_ledger (external_event_id);
CREATE TABLE submission_attachments (
    id            TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    submission_id TEXT NOT NULL,
    path          TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_submission_attachments_submission ON submission_attachments (submission_id);
CREATE TABLE kajabi_events (
    id           TEXT PRIMARY KEY,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at TIMESTAMPTZ,
    user_match   TEXT,
    payload      JSONB NOT NULL
);

CREATE MATERIALIZED VIEW leaderboard_totals AS
SELECT u.id AS user_id, u.handle, u.name,
       coalesce(sum(pl.delta_points), 0)::integer AS total_points,
       max(pl.created_at) AS last_activity_at
FROM users u LEFT JOIN points_ledger pl ON pl.user_id = u.id
WHERE u.role = 'PARTICIPANT'
GROUP BY u.id, u.handle, u.name;
CREATE UNIQUE INDEX idx_leaderboard_totals_user ON leaderboard_totals (user_id);
CREATE INDEX idx_leaderboard_totals_points ON leaderboard_totals (total_points DESC);

-- Never refreshed since the restore: the dashboards' activity counts are missing.
CREATE MATERIALIZED VIEW activity_metrics AS
SELECT a.code AS activity_code, a.name,
       count(s.id) AS submissions,
       count(s.id) FILTER (WHERE s.status = 'APPROVED') AS approved,
       count(DISTINCT s.user_id) AS participants
FROM activities a LEFT JOIN submissions s ON s.activity_code = a.code
GROUP BY a.code, a.name
WITH NO DATA;
CREATE UNIQUE INDEX idx_activity_metrics_code ON activity_metrics (activity_code);

CREATE FUNCTION refresh_all_analytics() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- CONCURRENTLY needs a populated view; a view never populated is refreshed plainly.
    IF (SELECT ispopulated FROM pg_matviews WHERE matviewname = 'activity_metrics') THEN
        REFRESH MATERIALIZED VIEW CONCURRENTLY activity_metrics;
    ELSE
        REFRESH MATERIALIZED VIEW activity_metrics;
    END IF;
    REFRESH MATERIALIZED VIEW CONCURRENTLY leaderboard_totals;
END
$$;

INSERT INTO activities (code, name, default_points) VALUES
    ('LEARN', 'Learn', 20), ('EXPLORE', 'Explore', 50), ('AMPLIFY', 'Amplify', 2),
    ('PRESENT', 'Present', 20), ('SHINE', 'Shine', 0);
INSERT INTO users (id, handle, name, email, role)
SELECT 'user_' || lpad(g::text, 2, '0'), 'handle' || g, 'Participant ' || g, 'p' || g || '@school.test',
       CASE WHEN g <= 16 THEN 'PARTICIPANT' WHEN g <= 18 THEN 'REVIEWER' ELSE 'ADMIN' END
FROM generate_series(1, 19) g;

-- Every participant: a LEARN certificate and an EXPLORE submission, approved, with points.
INSERT INTO submissions (id, user_id, activity_code, status, payload, created_at)
SELECT 'sub_' || a.code || '_' || u.id, u.id, a.code, 'APPROVED', jsonb_build_object('evidence', 'file'),
       now() - interval '20 days' + (a.default_points || ' hours')::interval
FROM users u CROSS JOIN activities a
WHERE u.role = 'PARTICIPANT' AND a.code IN ('LEARN', 'EXPLORE');
INSERT INTO submission_attachments (submission_id, path)
SELECT id, 'evidence/' || id || '.pdf' FROM submissions;
INSERT INTO points_ledger (user_id, activity_code, source, delta_points, external_source, external_event_id, created_at)
SELECT s.user_id, s.activity_code, CASE s.activity_code WHEN 'LEARN' THEN 'WEBHOOK' ELSE 'FORM' END, a.default_points,
       CASE s.activity_code WHEN 'LEARN' THEN 'kajabi' END,
       CASE s.activity_code WHEN 'LEARN' THEN 'kj_' || s.user_id END, s.created_at
FROM submissions s JOIN activities a ON a.code = s.activity_code;
INSERT INTO kajabi_events (id, received_at, processed_at, user_match, payload)
SELECT 'kj_' || u.id, now() - interval '20 days', now() - interval '20 days', u.id,
       jsonb_build_object('event_type', 'course.completed', 'email', u.email, 'product_name', 'AI for Educators')
FROM users u WHERE u.role = 'PARTICIPANT';
INSERT INTO kajabi_events (id, received_at, payload)
VALUES ('kj_unmatched', now() - interval '2 hours', '{"event_type": "course.completed", "email": "someone@else.test"}');

-- Two participants who joined later (no LEARN yet), users with malformed roles, a negative total.
INSERT INTO users (id, handle, name, email, role) VALUES
    ('user_20', 'amira', 'Amira Tan', 'Amira.Tan@School.test', 'PARTICIPANT'),
    ('user_21', 'benlee', 'Ben Lee', 'ben.lee@school.test', 'PARTICIPANT'),
    ('user_22', 'handle22', 'Staff 22', 'p22@school.test', 'admin'),
    ('user_23', 'handle23', 'Staff 23', 'p23@school.test', 'Reviewer '),
    ('user_24', 'handle24', 'Participant 24', 'p24@school.test', 'participant');
INSERT INTO points_ledger (user_id, activity_code, source, delta_points, created_at)
VALUES ('user_11', 'SHINE', 'MANUAL', -100, now() - interval '3 days');

REFRESH MATERIALIZED VIEW leaderboard_totals;

-- Orphans: a deleted user's work, a retired activity, attachments of deleted submissions.
INSERT INTO submissions (id, user_id, activity_code, status, created_at) VALUES
    ('sub_gone_1', 'user_deleted', 'LEARN', 'APPROVED', now() - interval '10 days'),
    ('sub_gone_2', 'user_deleted', 'EXPLORE', 'APPROVED', now() - interval '9 days'),
    ('sub_gone_3', 'user_deleted', 'AMPLIFY', 'PENDING', now() - interval '8 days'),
    ('sub_legacy', 'user_03', 'LEGACY', 'APPROVED', now() - interval '300 days');
INSERT INTO submission_attachments (submission_id, path) VALUES
    ('sub_gone_1', 'evidence/sub_gone_1.pdf'), ('sub_gone_2', 'evidence/sub_gone_2.pdf'),
    ('sub_never_restored_1', 'evidence/lost-1.pdf'), ('sub_never_restored_2', 'evidence/lost-2.pdf');
INSERT INTO points_ledger (user_id, activity_code, source, delta_points, created_at)
SELECT 'user_deleted', code, 'FORM', default_points, now() - interval '9 days'
FROM activities WHERE code IN ('LEARN', 'EXPLORE', 'AMPLIFY', 'PRESENT');

-- Duplicates: two more live LEARN submissions, and three Kajabi events credited twice.
INSERT INTO submissions (id, user_id, activity_code, status, created_at) VALUES
    ('sub_LEARN_user_01_again', 'user_01', 'LEARN', 'PENDING', now() - interval '1 day'),
    ('sub_LEARN_user_02_again', 'user_02', 'LEARN', 'APPROVED', now() - interval '2 days');
INSERT INTO points_ledger (user_id, activity_code, source, delta_points, external_source, external_event_id, created_at)
SELECT user_id, activity_code, source, delta_points, external_source, external_event_id, created_at + interval '5 seconds'
FROM points_ledger WHERE external_event_id IN ('kj_user_04', 'kj_user_05', 'kj_user_06');

-- Points after the last refresh: the leaderboard is stale for these participants.
INSERT INTO points_ledger (user_id, activity_code, source, delta_points, created_at)
VALUES ('user_07', 'PRESENT', 'MANUAL', 20, now()), ('user_08', 'AMPLIFY', 'FORM', 2, now());

-- Point calculation errors: approved submissions whose points were never credited.
INSERT INTO submissions (id, user_id, activity_code, status, created_at) VALUES
    ('sub_PRESENT_user_09', 'user_09', 'PRESENT', 'APPROVED', now() - interval '4 days'),
    ('sub_PRESENT_user_10', 'user_10', 'PRESENT', 'APPROVED', now() - interval '4 days');

-- AMPLIFY quota: at most 50 peers and 200 students trained in 7 days (the limits are the
-- function's constants, as in the guide). user_12 has trained 48 peers this week.
INSERT INTO submissions (id, user_id, activity_code, status, payload, created_at) VALUES
    ('sub_AMPLIFY_user_12_a', 'user_12', 'AMPLIFY', 'PENDING', '{"peersTrained": 30, "studentsTrained": 120}', now() - interval '5 days'),
    ('sub_AMPLIFY_user_12_b', 'user_12', 'AMPLIFY', 'PENDING', '{"peersTrained": 18, "studentsTrained": 40}', now() - interval '1 day'),
    ('sub_AMPLIFY_user_12_old', 'user_12', 'AMPLIFY', 'REJECTED', '{"peersTrained": 40, "studentsTrained": 10}', now() - interval '12 days');
CREATE FUNCTION check_amplify_quota() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  peer_limit CONSTANT integer := 50;
  student_limit CONSTANT integer := 200;
  total_peers INTEGER;
  total_students INTEGER;
BEGIN
  IF NEW.activity_code <> 'AMPLIFY' THEN RETURN NEW; END IF;
  SELECT coalesce(sum((payload->>'peersTrained')::int), 0), coalesce(sum((payload->>'studentsTrained')::int), 0)
    INTO total_peers, total_students
    FROM submissions
   WHERE user_id = NEW.user_id AND activity_code = 'AMPLIFY' AND created_at >= now() - interval '7 days';
  IF total_peers + coalesce((NEW.payload->>'peersTrained')::int, 0) > peer_limit THEN
    RAISE EXCEPTION 'Peer training limit exceeded';
  END IF;
  IF total_students + coalesce((NEW.payload->>'studentsTrained')::int, 0) > student_limit THEN
    RAISE EXCEPTION 'Student training limit exceeded';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER trg_check_amplify_quota BEFORE INSERT ON submissions
    FOR EACH ROW EXECUTE PROCEDURE check_amplify_quota();

-- Kajabi: a course completion for Ben received twice (Kajabi retried), neither processed; and
-- an older one for Amira, marked NO_USER_FOUND because her address differs in case.
INSERT INTO kajabi_events (id, received_at, payload) VALUES
    ('kj_ben_1', now() - interval '3 hours',
     '{"event_type": "course.completed", "email": "ben.lee@school.test", "product_name": "AI for Educators"}'),
    ('kj_ben_1_retry', now() - interval '170 minutes',
     '{"event_type": "course.completed", "email": "ben.lee@school.test", "product_name": "AI for Educators"}');
INSERT INTO kajabi_events (id, received_at, processed_at, user_match, payload) VALUES
    ('kj_amira', now() - interval '2 days', now() - interval '2 days', 'NO_USER_FOUND',
     '{"event_type": "course.completed", "email": "amira.tan@school.test", "product_name": "AI for Educators"}');
ANALYZE;
