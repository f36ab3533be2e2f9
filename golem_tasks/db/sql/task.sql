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
       count(*) AS total,
       count(*) FILTER (WHERE parent_id IS NOT NULL) AS follow_ups
FROM tasks.task WHERE run_id = %(run_id)s;

-- name: pending_count
-- Walks only the partial index of pending tasks.
SELECT count(*) AS pending FROM tasks.task WHERE run_id = %(run_id)s AND status = 'pending';

-- name: claim_task
-- Complete and claim for several activities of one run at once (a worker process batches
-- its drivers' requests: one round trip for all of them). Each input row may complete the
-- activity's previous task (task_id; only if its claim is still current, as complete_task)
-- with the result's batches, and may ask for the activity's next task (claim_next). Next
-- tasks are the first pending ones in feed order; concurrent claimers skip each other's
-- rows. The claim that reaches the feeder's wake-up position clears it and wakes the
-- feeder (see 0006_task_signals.sql). Rows: 'done' for each result stored, 'claimed' for
-- each task claimed (by activity_id).
WITH input AS (
    SELECT *
    FROM unnest(%(task_ids)s::bigint[], %(activity_ids)s::text[], %(attempts)s::integer[],
                %(results)s::jsonb[], %(claim_next)s::boolean[])
         WITH ORDINALITY AS i(task_id, activity_id, attempt, result, claim_next, n)
), done AS (
    UPDATE tasks.task t
    SET status = 'done', result = i.result, error = NULL, lease_until = NULL,
        finished_at = now()
    FROM input i
    WHERE t.id = i.task_id AND t.status = 'claimed' AND t.activity_id = i.activity_id
      AND t.attempts = i.attempt
    RETURNING t.id, t.activity_id, t.attempts
), batches AS (
    INSERT INTO tasks.batch (id, run_id, activity_id, task_id, attempt)
    SELECT b.id, %(run_id)s, done.activity_id, done.id, done.attempts
    FROM unnest(%(batch_task_ids)s::bigint[], %(batch_ids)s::text[]) AS b(task_id, id)
    JOIN done ON done.id = b.task_id
    ON CONFLICT (id) DO NOTHING
), wanted AS (
    SELECT activity_id, row_number() OVER (ORDER BY n) AS k FROM input WHERE claim_next
), next AS (
    SELECT id, row_number() OVER (ORDER BY position) AS k
    FROM (
        SELECT id, position FROM tasks.task
        WHERE run_id = %(run_id)s AND status = 'pending'
        ORDER BY position
        LIMIT (SELECT count(*) FROM wanted)
        FOR UPDATE SKIP LOCKED
    ) AS free
), claimed AS (
    UPDATE tasks.task t
    SET status = 'claimed', attempts = t.attempts + 1, activity_id = w.activity_id,
        claimed_at = now(), lease_until = now() + make_interval(secs => %(lease_s)s),
        started_at = coalesce(t.started_at, now())
    FROM next JOIN wanted w USING (k)
    WHERE t.id = next.id
    RETURNING t.id, t.activity_id, t.key, t.data, t.attempts, t.max_attempts, t.timeout_s,
              t.position
), wake AS (
    UPDATE tasks.run SET feed_wake_at = NULL
    WHERE id = %(run_id)s AND feed_wake_at <= (SELECT max(position) FROM claimed)
    RETURNING pg_notify('golem_tasks_feed', id)
)
SELECT 'done' AS kind, id, activity_id, NULL::text AS key, NULL::jsonb AS data, attempts,
       NULL::integer AS max_attempts, NULL::double precision AS timeout_s
FROM done
UNION ALL
SELECT 'claimed', id, activity_id, key, data, attempts, max_attempts, timeout_s
FROM claimed;

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

-- name: insert_follow_ups
-- Tasks the app's on_result added, stored with their parent's result: queued at the
-- parent's position (so they run before tasks fed later, and the feeder's positions stay
-- its own), with the parent's limits. A key already stored adds nothing.
INSERT INTO tasks.task (run_id, key, position, data, max_attempts, timeout_s, parent_id)
SELECT p.run_id, t.key, p.position, t.data, p.max_attempts, p.timeout_s, p.id
FROM tasks.task p,
     unnest(%(keys)s::text[], %(datas)s::jsonb[]) AS t(key, data)
WHERE p.id = %(task_id)s
ON CONFLICT (run_id, key) DO NOTHING;

-- name: count_results_having
-- Done tasks whose result is an object with a non-null value under %(field)s.
SELECT count(*) AS results FROM tasks.task
WHERE run_id = %(run_id)s AND status = 'done'
  AND jsonb_typeof(result -> %(field)s) <> 'null';

-- name: insert_batches
INSERT INTO tasks.batch (id, run_id, activity_id, task_id, attempt)
SELECT b.id, %(run_id)s, %(activity_id)s, %(task_id)s, %(attempt)s
FROM unnest(%(batch_ids)s::text[]) AS b(id)
ON CONFLICT (id) DO NOTHING;

-- name: renew_leases
-- The driving worker's heartbeat: its activities are alive and their claims stay its own.
-- A claim row locked right now is being completed or claimed (which sets its lease): it is
-- skipped, so that the heartbeat never waits for, or deadlocks with, the claim statements.
WITH seen AS (
    UPDATE tasks.activity SET heartbeat_at = now()
    WHERE id = ANY(%(activity_ids)s::text[])
    RETURNING id
), held AS (
    SELECT id FROM tasks.task
    WHERE activity_id IN (SELECT id FROM seen) AND status = 'claimed'
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks.task SET lease_until = now() + make_interval(secs => %(lease_s)s)
WHERE id IN (SELECT id FROM held);

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
