-- Read-only views of a run for `summary`, `show` and `results`.

-- name: list_runs
SELECT r.id, r.app, r.status, r.stop_reason, r.created_at,
       (SELECT count(*) FROM tasks.task t WHERE t.run_id = r.id) AS tasks,
       (SELECT count(*) FROM tasks.task t WHERE t.run_id = r.id AND t.status = 'done') AS done
FROM tasks.run r ORDER BY r.created_at DESC LIMIT %(limit)s;

-- name: run_spend
SELECT (SELECT coalesce(sum(increment), 0) FROM tasks.debit_note
        WHERE run_id = %(run_id)s AND status = 'accepted')
     + (SELECT coalesce(sum(increment), 0) FROM tasks.invoice
        WHERE run_id = %(run_id)s AND status = 'accepted') AS accepted,
       (SELECT count(*) FROM tasks.debit_note WHERE run_id = %(run_id)s) AS debit_notes,
       (SELECT count(*) FROM tasks.debit_note
        WHERE run_id = %(run_id)s AND status IN ('refused', 'rejected')) AS refused_notes,
       (SELECT count(*) FROM tasks.invoice WHERE run_id = %(run_id)s) AS invoices,
       (SELECT count(*) FROM tasks.invoice
        WHERE run_id = %(run_id)s AND status = 'accepted') AS accepted_invoices,
       (SELECT count(*) FROM tasks.allocation WHERE run_id = %(run_id)s) AS allocations;

-- name: run_market
SELECT (SELECT count(*) FROM tasks.proposal WHERE run_id = %(run_id)s
        AND issuer = 'provider' AND parent_id IS NULL) AS offers,
       (SELECT count(*) FROM tasks.agreement WHERE run_id = %(run_id)s) AS agreements,
       (SELECT count(*) FROM tasks.agreement
        WHERE run_id = %(run_id)s AND status = 'approved') AS live_agreements,
       (SELECT count(*) FROM tasks.activity WHERE run_id = %(run_id)s) AS activities,
       (SELECT count(*) FROM tasks.activity
        WHERE run_id = %(run_id)s AND status = 'ready') AS working_activities,
       (SELECT count(*) FROM tasks.activity
        WHERE run_id = %(run_id)s AND status = 'failed') AS failed_activities,
       (SELECT count(*) FROM tasks.error WHERE run_id = %(run_id)s) AS errors;

-- name: run_activities
-- One row per activity: who provides it, what it did and what it cost.
SELECT act.id, act.status, act.stop_reason, act.stop_request, act.created_at, act.stopped_at,
       ag.provider_name, ag.provider_id,
       (SELECT count(*) FROM tasks.task t WHERE t.activity_id = act.id AND t.status = 'done')
           AS done,
       (SELECT count(*) FROM tasks.task t WHERE t.activity_id = act.id AND t.status = 'claimed')
           AS running,
       greatest(
           (SELECT coalesce(max(total_amount_due), 0) FROM tasks.debit_note dn
            WHERE dn.activity_id = act.id AND dn.status = 'accepted'),
           (SELECT coalesce(sum(amount), 0) FROM tasks.invoice i
            WHERE i.agreement_id = act.agreement_id AND i.status = 'accepted')) AS cost
FROM tasks.activity act JOIN tasks.agreement ag ON ag.id = act.agreement_id
WHERE act.run_id = %(run_id)s
ORDER BY (act.status IN ('stopped', 'failed')), act.created_at DESC
LIMIT %(limit)s;

-- name: recent_errors
SELECT at, source, kind, message, activity_id FROM tasks.error
WHERE run_id = %(run_id)s ORDER BY at DESC, id DESC LIMIT %(limit)s;

-- name: results_history
SELECT at, results_cnt FROM tasks.results_history
WHERE run_id = %(run_id)s ORDER BY at DESC LIMIT %(limit)s;

-- name: task_timings
SELECT min(started_at) AS first_start, max(finished_at) AS last_finish,
       avg(extract(epoch FROM finished_at - claimed_at))
           FILTER (WHERE status = 'done') AS avg_task_s
FROM tasks.task WHERE run_id = %(run_id)s;

-- name: task_results
-- Every task of a run, in feed order, with the activity (and provider) that ran it.
SELECT t.key, t.status, t.result, t.attempts, t.error, t.activity_id, ag.provider_name,
       t.started_at, t.finished_at
FROM tasks.task t
LEFT JOIN tasks.activity act ON act.id = t.activity_id
LEFT JOIN tasks.agreement ag ON ag.id = act.agreement_id
WHERE t.run_id = %(run_id)s
ORDER BY t.position;

-- name: read_only_snapshot
-- Every read of one snapshot sees the same moment of the run.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY;

-- name: db_now
SELECT now() AS now;
