-- Read-only views of runs for `runs`, `summary`, `show`, `results`, the dashboard, its
-- /metrics and `report`.

-- name: list_runs
-- The most recent runs with their task counts: stored and done from the tallies of
-- migration 0009, failed (few) from the index.
SELECT r.id, r.app, r.status, r.stop_reason, r.created_at, r.finished_at, r.workers,
       r.budget_per_hour, r.feed_done, c.tasks, c.done, c.failed
FROM tasks.run r
CROSS JOIN LATERAL (
    SELECT coalesce(sum(t.n) FILTER (WHERE t.kind = 'tasks'), 0) AS tasks,
           coalesce(sum(t.n) FILTER (WHERE t.kind = 'done'), 0) AS done,
           (SELECT count(*) FROM tasks.task f WHERE f.run_id = r.id AND f.status = 'failed')
               AS failed
    FROM tasks.tally_now t WHERE t.run_id = r.id AND t.kind IN ('tasks', 'done')) AS c
ORDER BY r.created_at DESC LIMIT %(limit)s;

-- name: list_run
-- One run as list_runs shows it.
SELECT r.id, r.app, r.status, r.stop_reason, r.created_at, r.finished_at, r.workers,
       r.budget_per_hour, r.feed_done, c.tasks, c.done, c.failed
FROM tasks.run r
CROSS JOIN LATERAL (
    SELECT coalesce(sum(t.n) FILTER (WHERE t.kind = 'tasks'), 0) AS tasks,
           coalesce(sum(t.n) FILTER (WHERE t.kind = 'done'), 0) AS done,
           (SELECT count(*) FROM tasks.task f WHERE f.run_id = r.id AND f.status = 'failed')
               AS failed
    FROM tasks.tally_now t WHERE t.run_id = r.id AND t.kind IN ('tasks', 'done')) AS c
WHERE r.id = %(run_id)s;

-- name: run_spend
-- What the run accepted and its documents by decision ('refused': decided again when it
-- comes back, as before 0003; 'rejected': for good), from the run's document tallies.
SELECT d.notes_accepted_glm + d.invoices_accepted_glm AS accepted,
       d.debit_notes, d.notes_refused + d.notes_rejected AS refused_notes,
       d.notes_refused, d.notes_rejected,
       d.invoices, d.invoices - d.invoices_refused - d.invoices_rejected AS accepted_invoices,
       d.invoices_refused, d.invoices_rejected,
       (SELECT count(*) FROM tasks.allocation WHERE run_id = %(run_id)s) AS allocations
FROM (SELECT coalesce(sum(amount) FILTER (WHERE status = 'debit_note:accepted'), 0)
                 AS notes_accepted_glm,
             coalesce(sum(amount) FILTER (WHERE status = 'invoice:accepted'), 0)
                 AS invoices_accepted_glm,
             coalesce(sum(n) FILTER (WHERE split_part(status, ':', 1) = 'debit_note'), 0)
                 AS debit_notes,
             coalesce(sum(n) FILTER (WHERE status = 'debit_note:refused'), 0) AS notes_refused,
             coalesce(sum(n) FILTER (WHERE status = 'debit_note:rejected'), 0)
                 AS notes_rejected,
             coalesce(sum(n) FILTER (WHERE split_part(status, ':', 1) = 'invoice'), 0)
                 AS invoices,
             coalesce(sum(n) FILTER (WHERE status = 'invoice:refused'), 0) AS invoices_refused,
             coalesce(sum(n) FILTER (WHERE status = 'invoice:rejected'), 0)
                 AS invoices_rejected
      FROM tasks.tally_now WHERE run_id = %(run_id)s AND kind = 'document') AS d;

-- name: run_market
-- Market and activity counts; "ready" activities are the ones working.
SELECT (SELECT count(*) FROM tasks.proposal WHERE run_id = %(run_id)s
        AND issuer = 'provider' AND parent_id IS NULL) AS offers,
       (SELECT count(*) FROM tasks.agreement WHERE run_id = %(run_id)s) AS agreements,
       (SELECT count(*) FROM tasks.agreement
        WHERE run_id = %(run_id)s AND status = 'approved') AS live_agreements,
       act.activities, act.working_activities, act.new_activities, act.deploying_activities,
       act.stopped_activities, act.failed_activities,
       (SELECT coalesce(sum(n), 0) FROM tasks.tally_now
        WHERE run_id = %(run_id)s AND kind = 'batch') AS batches,
       (SELECT count(*) FROM tasks.error WHERE run_id = %(run_id)s) AS errors,
       rh.results_cnt AS reported_results, rh.at AS reported_results_at
FROM (SELECT count(*) AS activities,
             count(*) FILTER (WHERE status = 'ready') AS working_activities,
             count(*) FILTER (WHERE status = 'new') AS new_activities,
             count(*) FILTER (WHERE status = 'deploying') AS deploying_activities,
             count(*) FILTER (WHERE status = 'stopped') AS stopped_activities,
             count(*) FILTER (WHERE status = 'failed') AS failed_activities
      FROM tasks.activity WHERE run_id = %(run_id)s) AS act
LEFT JOIN LATERAL (SELECT results_cnt, at FROM tasks.results_history
                   WHERE run_id = %(run_id)s ORDER BY at DESC LIMIT 1) AS rh ON true;

-- name: run_activities
-- One row per activity: who provides it, what it did and what it cost.
WITH running AS (
    SELECT activity_id, count(*) AS n FROM tasks.task
    WHERE run_id = %(run_id)s AND status = 'claimed' GROUP BY activity_id
)
SELECT act.id, act.status, act.stop_reason, act.stop_request, act.created_at, act.stopped_at,
       ag.provider_name, ag.provider_id,
       (SELECT coalesce(sum(n), 0) FROM tasks.tally_now t
        WHERE t.run_id = act.run_id AND t.kind = 'done' AND t.key = act.id) AS done,
       coalesce((SELECT r.n FROM running r WHERE r.activity_id = act.id), 0) AS running,
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
SELECT at, source, kind, message, agreement_id, activity_id, task_id FROM tasks.error
WHERE run_id = %(run_id)s ORDER BY at DESC, id DESC LIMIT %(limit)s;

-- name: results_history
SELECT at, results_cnt FROM tasks.results_history
WHERE run_id = %(run_id)s ORDER BY at DESC LIMIT %(limit)s;

-- name: task_timings
-- The mean time from claim to result of the done tasks.
SELECT sum(amount) / nullif(sum(n), 0) AS avg_task_s
FROM tasks.tally_now WHERE run_id = %(run_id)s AND kind = 'done';

-- name: run_task_counts
-- The numbers of taskstore's task_counts without reading every task: stored, done and
-- follow-ups from the run's tallies; pending, claimed and failed (few: the feed window,
-- a claim per activity, the failures) from their indexes.
SELECT (SELECT count(*) FROM tasks.task WHERE run_id = %(run_id)s AND status = 'pending')
           AS pending,
       (SELECT count(*) FROM tasks.task WHERE run_id = %(run_id)s AND status = 'claimed')
           AS claimed,
       coalesce(sum(n) FILTER (WHERE kind = 'done'), 0) AS done,
       (SELECT count(*) FROM tasks.task WHERE run_id = %(run_id)s AND status = 'failed')
           AS failed,
       coalesce(sum(n) FILTER (WHERE kind = 'tasks'), 0) AS total,
       coalesce(sum(n) FILTER (WHERE kind = 'follow_up'), 0) AS follow_ups
FROM tasks.tally_now WHERE run_id = %(run_id)s AND kind IN ('tasks', 'done', 'follow_up');

-- name: task_results
-- Every task of a run, in feed order, with the activity (and provider) that ran it.
SELECT t.key, t.status, t.result, t.attempts, t.error, t.activity_id, ag.provider_name,
       t.started_at, t.finished_at
FROM tasks.task t
LEFT JOIN tasks.activity act ON act.id = t.activity_id
LEFT JOIN tasks.agreement ag ON ag.id = act.agreement_id
WHERE t.run_id = %(run_id)s
ORDER BY t.position;

-- name: run_providers
-- One row per provider: what its activities did and what its agreements cost. Costs are
-- the accepted increments of its debit notes and invoices, so the rows add up to the run's
-- accepted spend; failures are failed task attempts on its activities.
WITH per_activity AS (
    SELECT activity_id, sum(done) AS done, sum(failed) AS failed, sum(task_s) AS task_s
    FROM (SELECT key AS activity_id, n AS done, 0 AS failed, amount AS task_s
          FROM tasks.tally_now WHERE run_id = %(run_id)s AND kind = 'done' AND key <> ''
          UNION ALL
          SELECT activity_id, 0, 1, 0 FROM tasks.task
          WHERE run_id = %(run_id)s AND status = 'failed' AND activity_id IS NOT NULL)
         AS counted
    GROUP BY activity_id
), attempt_errors AS (
    SELECT activity_id, count(*) AS failures FROM tasks.error
    WHERE run_id = %(run_id)s AND kind = 'task' AND activity_id IS NOT NULL
    GROUP BY activity_id
), spend AS (
    SELECT key AS agreement_id, sum(amount) AS glm FROM tasks.tally_now
    WHERE run_id = %(run_id)s AND kind = 'document'
      AND status IN ('debit_note:accepted', 'invoice:accepted')
    GROUP BY key
), stops AS (
    SELECT provider_id, jsonb_object_agg(reason, n) AS stop_reasons FROM (
        SELECT ag.provider_id, act.stop_reason AS reason, count(*) AS n
        FROM tasks.activity act JOIN tasks.agreement ag ON ag.id = act.agreement_id
        WHERE act.run_id = %(run_id)s AND act.stop_reason IS NOT NULL
        GROUP BY 1, 2) AS r
    GROUP BY provider_id
), per_agreement AS (
    SELECT ag.id, ag.provider_id, ag.provider_name,
           count(act.id) AS activities,
           count(act.id) FILTER (WHERE act.status = 'ready') AS working,
           coalesce(sum(pa.done), 0) AS done,
           coalesce(sum(pa.failed), 0) AS failed,
           coalesce(sum(ae.failures), 0) AS failures,
           coalesce(sum(pa.task_s), 0) AS task_s,
           max(ag.avoid_reason) AS avoid_reason
    FROM tasks.agreement ag
    LEFT JOIN tasks.activity act ON act.agreement_id = ag.id
    LEFT JOIN per_activity pa ON pa.activity_id = act.id
    LEFT JOIN attempt_errors ae ON ae.activity_id = act.id
    WHERE ag.run_id = %(run_id)s AND ag.approved_at IS NOT NULL
    GROUP BY ag.id
), per_provider AS (
    SELECT pa.provider_id, max(pa.provider_name) AS provider_name,
           count(*) AS agreements, sum(pa.activities) AS activities, sum(pa.working) AS working,
           sum(pa.done) AS done, sum(pa.failed) AS failed, sum(pa.failures) AS failures,
           coalesce(sum(s.glm), 0) AS glm,
           CASE WHEN sum(pa.done) > 0 THEN sum(pa.task_s) / sum(pa.done) END AS mean_task_s,
           max(pa.avoid_reason) AS avoid_reason
    FROM per_agreement pa LEFT JOIN spend s ON s.agreement_id = pa.id
    GROUP BY pa.provider_id
    ORDER BY sum(pa.done) DESC, coalesce(sum(s.glm), 0) DESC, pa.provider_id
    LIMIT %(limit)s
)
-- The stop reasons joined once to the providers shown (not looked up once per provider).
SELECT p.provider_id, p.provider_name, p.agreements, p.activities, p.working, p.done,
       p.failed, p.failures, p.glm, p.mean_task_s,
       coalesce(st.stop_reasons, '{}') AS stop_reasons, p.avoid_reason
FROM per_provider p LEFT JOIN stops st ON st.provider_id = p.provider_id
ORDER BY p.done DESC, p.glm DESC, p.provider_id;

-- name: run_timeline
-- The run's history at %(points)s + 1 points evenly spread from its start to its end (or
-- now): results so far, activities working, GLM accepted so far. Results and spend come
-- from the run's per-second tallies, counted into steps with width_bucket on epoch seconds.
WITH span AS (
    SELECT created_at AS t0,
           greatest(coalesce(finished_at, now()), created_at + interval '1 second') AS t1,
           date_part('epoch', created_at) AS e0,
           date_part('epoch', greatest(coalesce(finished_at, now()),
                                       created_at + interval '1 second')) AS e1
    FROM tasks.run WHERE id = %(run_id)s
), points AS (
    SELECT i, t0 + (t1 - t0) * i / %(points)s AS at
    FROM span, generate_series(0, %(points)s) AS i
), tallied AS (
    -- Results and accepted spend per step, in one pass over the run's per-second tallies.
    SELECT least(width_bucket(date_part('epoch', t.at), s.e0, s.e1, %(points)s),
                 %(points)s) AS i,
           sum(t.n) FILTER (WHERE t.kind = 'done_at') AS n,
           sum(t.amount) FILTER (WHERE t.kind = 'spend_at') AS glm
    FROM tasks.tally_now t, span s
    WHERE t.run_id = %(run_id)s AND t.kind IN ('done_at', 'spend_at')
    GROUP BY 1
), lives AS (
    -- +1 when an activity became ready, -1 when it stopped: their running sum is the
    -- number working at each point.
    SELECT least(width_bucket(date_part('epoch', e.at), s.e0, s.e1, %(points)s),
                 %(points)s) AS i,
           sum(e.delta) AS delta
    FROM (SELECT ready_at AS at, 1 AS delta FROM tasks.activity
          WHERE run_id = %(run_id)s AND ready_at IS NOT NULL
          UNION ALL
          SELECT stopped_at, -1 FROM tasks.activity
          WHERE run_id = %(run_id)s AND ready_at IS NOT NULL AND stopped_at IS NOT NULL)
         AS e, span s
    GROUP BY 1
)
SELECT p.at,
       sum(coalesce(d.n, 0)) OVER (ORDER BY p.i) AS results,
       sum(coalesce(d.glm, 0)) OVER (ORDER BY p.i) AS glm,
       sum(coalesce(l.delta, 0)) OVER (ORDER BY p.i) AS working
FROM points p
LEFT JOIN tallied d ON d.i = p.i
LEFT JOIN lives l ON l.i = p.i
ORDER BY p.i;

-- name: metrics_runs
-- The runs /metrics reports: every live run and the most recent others.
(SELECT id FROM tasks.run WHERE status IN ('running', 'stopping'))
UNION
(SELECT id FROM tasks.run ORDER BY created_at DESC LIMIT %(recent)s);

-- name: metrics_runs_info
SELECT id, app, status, budget_per_hour, workers FROM tasks.run WHERE id = ANY(%(ids)s::text[]);

-- name: metrics_tasks
-- Done from the tallies, the other statuses (few) from the index.
SELECT run_id, 'done' AS status, sum(n) AS n FROM tasks.tally_now
WHERE run_id = ANY(%(ids)s::text[]) AND kind = 'done' GROUP BY run_id HAVING sum(n) > 0
UNION ALL
SELECT run_id, status, count(*) FROM tasks.task
WHERE run_id = ANY(%(ids)s::text[]) AND status IN ('pending', 'claimed', 'failed')
GROUP BY run_id, status;

-- name: metrics_activities
SELECT run_id, status, count(*) AS n FROM tasks.activity
WHERE run_id = ANY(%(ids)s::text[]) GROUP BY run_id, status;

-- name: metrics_documents
-- Debit notes and invoices by decision, with the GLM they added when accepted.
SELECT run_id, split_part(status, ':', 1) AS kind, split_part(status, ':', 2) AS status,
       sum(n) AS n, sum(amount) AS glm
FROM tasks.tally_now WHERE run_id = ANY(%(ids)s::text[]) AND kind = 'document'
GROUP BY run_id, split_part(status, ':', 1), split_part(status, ':', 2)
HAVING sum(n) > 0;

-- name: metrics_results
SELECT DISTINCT ON (run_id) run_id, results_cnt FROM tasks.results_history
WHERE run_id = ANY(%(ids)s::text[]) ORDER BY run_id, at DESC;

-- name: read_only_snapshot
-- Every read of one snapshot sees the same moment of the run.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY;

-- name: db_now
SELECT now() AS now;

-- name: worker_panel
-- The live runs, with the activities that the given worker processes (host:pid) drive.
SELECT r.id AS run_id, r.status,
       (SELECT count(*) FROM tasks.activity act
        WHERE act.run_id = r.id AND act.status = 'ready'
          AND split_part(act.worker, ':', 1) || ':' || split_part(act.worker, ':', 2)
              = ANY(%(workers)s::text[])) AS mine,
       (SELECT count(*) FROM tasks.activity act
        WHERE act.run_id = r.id AND act.status = 'ready') AS working,
       c.done, c.total
FROM tasks.run r
CROSS JOIN LATERAL (
    SELECT coalesce(sum(t.n) FILTER (WHERE t.kind = 'done'), 0) AS done,
           coalesce(sum(t.n) FILTER (WHERE t.kind = 'tasks'), 0) AS total
    FROM tasks.tally_now t WHERE t.run_id = r.id AND t.kind IN ('tasks', 'done')) AS c
WHERE r.status IN ('running', 'stopping')
ORDER BY r.created_at;
