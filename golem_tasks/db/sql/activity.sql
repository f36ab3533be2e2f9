-- Activities: created and driven by workers, asked to stop by the supervisor.

-- name: insert_activity
INSERT INTO tasks.activity (id, run_id, agreement_id, status, worker, heartbeat_at)
VALUES (%(id)s, %(run_id)s, %(agreement_id)s, 'deploying', %(worker)s, now());

-- name: activity_ready
UPDATE tasks.activity SET status = 'ready', ready_at = coalesce(ready_at, now())
WHERE id = %(id)s AND status IN ('new', 'deploying');

-- name: take_over_activity
-- A worker starts driving an existing activity, only once its previous worker is gone
-- (released it, or stopped renewing its heartbeat for longer than a lease).
UPDATE tasks.activity SET worker = %(worker)s, heartbeat_at = now()
WHERE id = %(id)s AND status = 'ready'
  AND (worker IS NULL OR worker = %(worker)s
       OR heartbeat_at < now() - make_interval(secs => %(lease_s)s))
RETURNING id;

-- name: release_activity_driver
UPDATE tasks.activity SET worker = NULL WHERE id = %(id)s AND worker = %(worker)s;

-- name: end_activity
-- The last worker stays recorded: it is who drove the activity.
UPDATE tasks.activity
SET status = %(status)s, stop_reason = coalesce(stop_reason, %(reason)s), stopped_at = now()
WHERE id = %(id)s AND status NOT IN ('stopped', 'failed');

-- name: latest_activity
SELECT * FROM tasks.activity WHERE agreement_id = %(agreement_id)s
ORDER BY created_at DESC LIMIT 1;

-- name: request_activity_stop
-- Returns the activity only the first time it is asked to stop.
UPDATE tasks.activity SET stop_request = %(reason)s
WHERE id = %(id)s AND status NOT IN ('stopped', 'failed') AND stop_request IS NULL
RETURNING id, agreement_id;

-- name: request_run_activities_stop
UPDATE tasks.activity SET stop_request = coalesce(stop_request, %(reason)s)
WHERE run_id = %(run_id)s AND status NOT IN ('stopped', 'failed');

-- name: clear_stop_requests
-- A resumed run takes its live activities back into work.
UPDATE tasks.activity SET stop_request = NULL
WHERE run_id = %(run_id)s AND status NOT IN ('stopped', 'failed');

-- name: stop_requests
-- What the supervisor wants of the activities a worker drives: a reason means stop now.
SELECT act.id, coalesce(act.stop_request,
                        CASE WHEN r.status <> 'running' THEN 'run ' || r.status || ': '
                             || coalesce(r.stop_reason, '') END,
                        ag.terminate_reason) AS reason
FROM tasks.activity act
JOIN tasks.run r ON r.id = act.run_id
JOIN tasks.agreement ag ON ag.id = act.agreement_id
WHERE act.id = ANY(%(ids)s::text[]);

-- name: unfinished_activities
SELECT * FROM tasks.activity WHERE run_id = %(run_id)s AND status NOT IN ('stopped', 'failed');
