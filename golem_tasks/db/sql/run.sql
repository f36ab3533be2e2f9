-- Runs: creation, resumption, the supervisor's lock and its end.

-- name: supervisor_lock
-- Held on the supervisor's own connection for its life: one supervisor per run. A killed
-- supervisor's connection closes, which releases it.
SELECT pg_try_advisory_lock(hashtext('golem-tasks run'), hashtext(%(run_id)s)) AS locked;

-- name: ping
SELECT 1 AS ok;

-- name: create_run
INSERT INTO tasks.run (id, app, workers, budget_per_hour, max_price, subnet, payment_platform,
                       settings, queue, requestor_id)
VALUES (%(id)s, %(app)s, %(workers)s, %(budget_per_hour)s, %(max_price)s, %(subnet)s,
        %(payment_platform)s, %(settings)s, %(queue)s, %(requestor_id)s)
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: get_run
SELECT * FROM tasks.run WHERE id = %(run_id)s;

-- name: latest_run
SELECT * FROM tasks.run ORDER BY created_at DESC LIMIT 1;

-- name: resume_run
-- A resumed run takes the options of the command that resumed it.
UPDATE tasks.run
SET status = 'running', stop_reason = NULL, finished_at = NULL, app = %(app)s,
    workers = %(workers)s, budget_per_hour = %(budget_per_hour)s, max_price = %(max_price)s,
    subnet = %(subnet)s, payment_platform = %(payment_platform)s, settings = %(settings)s,
    queue = %(queue)s, requestor_id = %(requestor_id)s, updated_at = now()
WHERE id = %(id)s;

-- name: foreign_runs
-- Running runs of another requestor: a worker of this one says once why it leaves them.
SELECT id, requestor_id FROM tasks.run
WHERE status = 'running' AND requestor_id IS NOT NULL AND requestor_id <> %(mine)s;

-- name: supervisor_seen
-- Every tick: the run's supervisor, and the end of its current term so far.
WITH term AS (
    UPDATE tasks.supervisor_term SET seen_at = clock_timestamp()
    WHERE run_id = %(run_id)s AND supervisor = %(supervisor)s
      AND took_at = (SELECT max(took_at) FROM tasks.supervisor_term
                     WHERE run_id = %(run_id)s AND supervisor = %(supervisor)s)
)
UPDATE tasks.run SET supervisor = %(supervisor)s, supervisor_seen_at = now() WHERE id = %(run_id)s;

-- name: supervisor_took
-- A supervisor holds the run's lock (again): a new term begins.
INSERT INTO tasks.supervisor_term (run_id, supervisor) VALUES (%(run_id)s, %(supervisor)s);

-- name: run_holder
-- Who took the run last. A supervisor that takes the run's lock back after losing it must
-- find itself here: if another took the run meanwhile (and may have ended it), it is lost.
SELECT supervisor FROM tasks.supervisor_term WHERE run_id = %(run_id)s
ORDER BY took_at DESC LIMIT 1;

-- name: set_run_status
UPDATE tasks.run
SET status = %(status)s, stop_reason = coalesce(%(reason)s, stop_reason), updated_at = now(),
    finished_at = CASE WHEN %(status)s IN ('finished', 'failed', 'stopped') THEN now() END
WHERE id = %(run_id)s;

-- name: set_feed_done
UPDATE tasks.run SET feed_done = %(done)s, updated_at = now() WHERE id = %(run_id)s;

-- name: record_error
INSERT INTO tasks.error (run_id, source, kind, message, agreement_id, activity_id, task_id)
VALUES (%(run_id)s, %(source)s, %(kind)s, %(message)s, %(agreement_id)s, %(activity_id)s,
        %(task_id)s);

-- name: record_results_cnt
INSERT INTO tasks.results_history (run_id, at, results_cnt)
VALUES (%(run_id)s, %(at)s, %(results_cnt)s)
ON CONFLICT (run_id, at) DO NOTHING;

-- name: job_statuses
-- The procrastinate jobs of many agreements in one query (the supervisor checks them every
-- tick); a job that is not listed has ended and been deleted.
SELECT id, status::text AS status FROM procrastinate.procrastinate_jobs
WHERE id = ANY(%(ids)s::bigint[]);
