-- Tasks: fed by the supervisor, claimed and finished by workers.
-- A claim is (task id, activity id, attempt number): a completion that does not match the
-- current claim is a late or duplicate one and changes nothing.

-- name: insert_tasks
-- Idempotent by key: feeding the same iterable again after a restart adds nothing twice.
INSERT INTO tasks.task (run_id, key, position, data, max_attempts, timeout_s)
SELECT %(run_id)s, t.key, t.position, t.data, %(max_attempts)s, %(timeout_s)s
FROM unnest(%(keys)s::text[], %(positions)s::bigint[], %(datas)s::jsonb[]) AS t(key, position, data)
ON CONFLICT (run_id, key) DO NOTHING;

-- name: max_position
SELECT coalesce(max(position), -1) AS position FROM tasks.task WHERE run_id = %(run_id)s;

-- name: open_count
-- Tasks that still need work, read from the two partial indexes only: cheap every second
-- even when millions are done.
SELECT (SELECT count(*) FROM tasks.task WHERE run_id = %(run_id)s AND status = 'pending')
     + (SELECT count(*) FROM tasks.task WHERE run_id = %(run_id)s AND status = 'claimed')
       AS open;

-- name: task_counts
SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status = 'claimed') AS claimed,
       count(*) FILTER (WHERE status = 'done') AS done,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) AS total
FROM tasks.task WHERE run_id = %(run_id)s;

-- name: pending_count
-- Walks only the partial index of pending tasks.
SELECT count(*) AS pending FROM tasks.task WHERE run_id = %(run_id)s AND status = 'pending';

-- name: claim_task
-- The next pending task in feed order; concurrent claimers skip each other's rows. One
-- round trip per task on the hot path: with a task_id the statement first completes that
-- task (only if the claim is still the current one, as complete_task) and stores its
-- batches; without claim_next it claims nothing. The claim that reaches the feeder's
-- wake-up position clears it and wakes the feeder (see 0003_task_signals.sql).
WITH done AS (
    UPDATE tasks.task
    SET status = 'done', result = %(result)s, error = NULL, lease_until = NULL,
        finished_at = now()
    WHERE id = %(task_id)s AND status = 'claimed' AND activity_id = %(activity_id)s
      AND attempts = %(attempt)s
    RETURNING id
), batches AS (
    INSERT INTO tasks.batch (id, run_id, activity_id, task_id, attempt)
    SELECT b.id, %(run_id)s, %(activity_id)s, done.id, %(attempt)s
    FROM done CROSS JOIN unnest(%(batch_ids)s::text[]) AS b(id)
    ON CONFLICT (id) DO NOTHING
), next AS (
    SELECT id FROM tasks.task
    WHERE run_id = %(run_id)s AND status = 'pending' AND %(claim_next)s
    ORDER BY position
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE tasks.task t
    SET status = 'claimed', attempts = t.attempts + 1, activity_id = %(activity_id)s,
        claimed_at = now(), lease_until = now() + make_interval(secs => %(lease_s)s),
        started_at = coalesce(t.started_at, now())
    FROM next
    WHERE t.id = next.id
    RETURNING t.id, t.key, t.data, t.attempts, t.max_attempts, t.timeout_s, t.position
), wake AS (
    UPDATE tasks.run SET feed_wake_at = NULL
    WHERE id = %(run_id)s AND feed_wake_at <= (SELECT position FROM claimed)
    RETURNING pg_notify('golem_tasks_feed', id)
)
SELECT (SELECT count(*) FROM done) AS completed, claimed.*
FROM (VALUES (1)) AS one LEFT JOIN claimed ON true;

-- name: set_feed_wake_at
UPDATE tasks.run SET feed_wake_at = %(position)s WHERE id = %(run_id)s;

-- name: listen_feed
LISTEN golem_tasks_feed;

-- name: listen_pending
LISTEN golem_tasks_pending;

-- name: complete_task
UPDATE tasks.task
SET status = 'done', result = %(result)s, error = NULL, lease_until = NULL, finished_at = now()
WHERE id = %(task_id)s AND status = 'claimed' AND activity_id = %(activity_id)s
  AND attempts = %(attempt)s
RETURNING id;

-- name: fail_task_attempt
-- Back to the queue, or failed for good after its last attempt.
UPDATE tasks.task
SET status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
    error = %(error)s, lease_until = NULL,
    finished_at = CASE WHEN attempts >= max_attempts THEN now() END
WHERE id = %(task_id)s AND status = 'claimed' AND activity_id = %(activity_id)s
  AND attempts = %(attempt)s
RETURNING id, status;

-- name: insert_batches
INSERT INTO tasks.batch (id, run_id, activity_id, task_id, attempt)
SELECT b.id, %(run_id)s, %(activity_id)s, %(task_id)s, %(attempt)s
FROM unnest(%(batch_ids)s::text[]) AS b(id)
ON CONFLICT (id) DO NOTHING;

-- name: renew_leases
-- The driving worker's heartbeat: its activities are alive and their claims stay its own.
WITH seen AS (
    UPDATE tasks.activity SET heartbeat_at = now()
    WHERE id = ANY(%(activity_ids)s::text[])
    RETURNING id
)
UPDATE tasks.task SET lease_until = now() + make_interval(secs => %(lease_s)s)
WHERE activity_id IN (SELECT id FROM seen) AND status = 'claimed';

-- name: release_activity_claims
-- An activity that stops gives its claimed tasks back. When the activity broke (provider
-- gone) the attempt counts, so a task that breaks every activity it runs on ends failed;
-- when it was stopped on purpose (cost, budget, shutdown) the attempt is given back.
UPDATE tasks.task
SET status = CASE WHEN %(count_attempt)s AND attempts >= max_attempts THEN 'failed'
                  ELSE 'pending' END,
    attempts = CASE WHEN %(count_attempt)s THEN attempts ELSE greatest(attempts - 1, 0) END,
    error = %(error)s, lease_until = NULL,
    finished_at = CASE WHEN %(count_attempt)s AND attempts >= max_attempts THEN now() END
WHERE activity_id = %(activity_id)s AND status = 'claimed'
RETURNING id, status;

-- name: requeue_expired_claims
-- Claims whose worker stopped renewing them (it died): back to the queue. Dying with a task
-- counts as an attempt, so a task that kills its worker every time ends failed.
UPDATE tasks.task
SET status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
    error = 'claim expired: the worker driving activity ' || coalesce(activity_id, '?')
            || ' stopped renewing it',
    lease_until = NULL,
    finished_at = CASE WHEN attempts >= max_attempts THEN now() END
WHERE run_id = %(run_id)s AND status = 'claimed' AND lease_until < now()
RETURNING id, status, activity_id;

-- name: done_count
SELECT count(*) AS done FROM tasks.task WHERE run_id = %(run_id)s AND status = 'done';
