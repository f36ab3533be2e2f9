-- Running tallies for the views of a run (summary, show, the dashboard, /metrics), so that
-- what they cost does not grow with the number of finished tasks and documents.
--
-- What only grows is tallied: tasks stored, results (done tasks, per activity and per
-- second), batches, debit notes and invoices (per agreement and decision, accepted spend
-- per second). Pending, claimed and failed tasks are few (the feed window, one claim per
-- activity, the failures) and the views count them from their indexes: so claims, the hot
-- path of every worker, add nothing here; the trigger on task updates writes only for
-- results.
--
-- Statement triggers append each statement's change to tasks.tally_delta: an insert never
-- waits on another writer, so concurrent workers do not queue on a hot counter row. One
-- writing statement in 16 folds its run's deltas into tasks.tally, under a try-lock, so
-- folders never wait on each other either. Readers sum tasks.tally_now (tally plus the
-- deltas not folded yet): exact in any snapshot, since a fold moves rows in one transaction.
--
-- Kinds of tally rows (key and status are '' and at is -infinity where they do not apply):
--   tasks      n tasks stored
--   follow_up  n follow-up tasks stored (parent_id set)
--   batch      n batches stored
--   done       key = the activity that ran the task ('' for none); n done tasks,
--              amount = their seconds from claim to finish
--   done_at    at = the second tasks finished as done; n tasks
--   document   key = agreement_id, status = 'debit_note:STATUS' or 'invoice:STATUS';
--              n documents, amount = their increments
--   spend_at   at = the second documents were accepted; n documents, amount = increments

CREATE TABLE tasks.tally (
    run_id  text NOT NULL,
    kind    text NOT NULL,
    key     text NOT NULL DEFAULT '',
    status  text NOT NULL DEFAULT '',
    at      timestamptz NOT NULL DEFAULT '-infinity',
    n       bigint NOT NULL DEFAULT 0,
    amount  numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, kind, key, status, at)
);

-- No index: folds keep it small, and an index would cost each writing statement.
CREATE TABLE tasks.tally_delta (LIKE tasks.tally INCLUDING DEFAULTS)
    WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);

CREATE VIEW tasks.tally_now AS
SELECT run_id, kind, key, status, at, n, amount FROM tasks.tally
UNION ALL
SELECT run_id, kind, key, status, at, n, amount FROM tasks.tally_delta;

CREATE SEQUENCE tasks.tally_fold_tick CACHE 32;

-- Moves a run's deltas into its tally. Skipped, not waited for, when another transaction
-- is folding the run (or the caller's snapshot is older than its statement and could see
-- deltas already moved): the deltas stay readable and the next fold takes them.
CREATE FUNCTION tasks.fold_tally(p_run_id text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed'
       OR NOT pg_try_advisory_xact_lock(hashtext('golem-tasks tally'), hashtext(p_run_id)) THEN
        RETURN;
    END IF;
    WITH moved AS (
        DELETE FROM tasks.tally_delta WHERE run_id = p_run_id
        RETURNING run_id, kind, key, status, at, n, amount
    )
    INSERT INTO tasks.tally AS t (run_id, kind, key, status, at, n, amount)
    SELECT run_id, kind, key, status, at, sum(n), sum(amount) FROM moved
    GROUP BY run_id, kind, key, status, at
    ON CONFLICT (run_id, kind, key, status, at)
    DO UPDATE SET n = t.n + excluded.n, amount = t.amount + excluded.amount;
END $$;

-- Called by the triggers with the runs a statement changed: folds one statement in 16.
CREATE FUNCTION tasks.fold_tally_now_and_then(p_run_ids text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    IF p_run_ids IS NULL OR nextval('tasks.tally_fold_tick') % 16 <> 0 THEN
        RETURN;
    END IF;
    FOREACH r IN ARRAY p_run_ids LOOP
        PERFORM tasks.fold_tally(r);
    END LOOP;
END $$;

-- Tasks: stored ones when inserted or deleted; results when a task becomes done (or,
-- never in practice, stops being done). Claims and lease renewals insert nothing.
CREATE FUNCTION tasks.tally_tasks() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    runs text[];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        WITH changed AS (
            SELECT 1 AS sign, run_id, activity_id, status, parent_id, claimed_at, finished_at
            FROM new_rows WHERE status = 'done'
            UNION ALL
            SELECT -1, run_id, activity_id, status, parent_id, claimed_at, finished_at
            FROM old_rows WHERE status = 'done'
        ), facts AS (
            SELECT c.run_id, f.kind, f.key, f.at, c.sign AS n, f.amount
            FROM changed c
            CROSS JOIN LATERAL (VALUES
                ('tasks', '', '-infinity'::timestamptz, 0::numeric),
                ('follow_up', '', '-infinity', 0),
                ('done', coalesce(c.activity_id, ''), '-infinity',
                 c.sign * coalesce(extract(epoch FROM c.finished_at - c.claimed_at), 0)),
                ('done_at', '', date_trunc('second', c.finished_at), 0)
            ) AS f(kind, key, at, amount)
            WHERE (f.kind = 'done' AND c.status = 'done')
               OR (f.kind = 'done_at' AND c.status = 'done' AND c.finished_at IS NOT NULL)
        ), added AS (
            INSERT INTO tasks.tally_delta (run_id, kind, key, at, n, amount)
            SELECT run_id, kind, key, at, sum(n), sum(amount) FROM facts
            GROUP BY run_id, kind, key, at
            HAVING sum(n) <> 0 OR sum(amount) <> 0
            RETURNING run_id
        )
        SELECT array_agg(DISTINCT run_id) INTO runs FROM added;
    ELSIF TG_OP = 'INSERT' THEN
        WITH changed AS (
            SELECT 1 AS sign, run_id, activity_id, status, parent_id, claimed_at, finished_at
            FROM new_rows
        ), facts AS (
            SELECT c.run_id, f.kind, f.key, f.at, c.sign AS n, f.amount
            FROM changed c
            CROSS JOIN LATERAL (VALUES
                ('tasks', '', '-infinity'::timestamptz, 0::numeric),
                ('follow_up', '', '-infinity', 0),
                ('done', coalesce(c.activity_id, ''), '-infinity',
                 c.sign * coalesce(extract(epoch FROM c.finished_at - c.claimed_at), 0)),
                ('done_at', '', date_trunc('second', c.finished_at), 0)
            ) AS f(kind, key, at, amount)
            WHERE (f.kind = 'tasks' OR (f.kind = 'follow_up' AND c.parent_id IS NOT NULL))
               OR (f.kind = 'done' AND c.status = 'done')
               OR (f.kind = 'done_at' AND c.status = 'done' AND c.finished_at IS NOT NULL)
        ), added AS (
            INSERT INTO tasks.tally_delta (run_id, kind, key, at, n, amount)
            SELECT run_id, kind, key, at, sum(n), sum(amount) FROM facts
            GROUP BY run_id, kind, key, at
            HAVING sum(n) <> 0 OR sum(amount) <> 0
            RETURNING run_id
        )
        SELECT array_agg(DISTINCT run_id) INTO runs FROM added;
    ELSE
        WITH changed AS (
            SELECT -1 AS sign, run_id, activity_id, status, parent_id, claimed_at, finished_at
            FROM old_rows
        ), facts AS (
            SELECT c.run_id, f.kind, f.key, f.at, c.sign AS n, f.amount
            FROM changed c
            CROSS JOIN LATERAL (VALUES
                ('tasks', '', '-infinity'::timestamptz, 0::numeric),
                ('follow_up', '', '-infinity', 0),
                ('done', coalesce(c.activity_id, ''), '-infinity',
                 c.sign * coalesce(extract(epoch FROM c.finished_at - c.claimed_at), 0)),
                ('done_at', '', date_trunc('second', c.finished_at), 0)
            ) AS f(kind, key, at, amount)
            WHERE (f.kind = 'tasks' OR (f.kind = 'follow_up' AND c.parent_id IS NOT NULL))
               OR (f.kind = 'done' AND c.status = 'done')
               OR (f.kind = 'done_at' AND c.status = 'done' AND c.finished_at IS NOT NULL)
        ), added AS (
            INSERT INTO tasks.tally_delta (run_id, kind, key, at, n, amount)
            SELECT run_id, kind, key, at, sum(n), sum(amount) FROM facts
            GROUP BY run_id, kind, key, at
            HAVING sum(n) <> 0 OR sum(amount) <> 0
            RETURNING run_id
        )
        SELECT array_agg(DISTINCT run_id) INTO runs FROM added;
    END IF;
    PERFORM tasks.fold_tally_now_and_then(runs);
    RETURN NULL;
END $$;

-- Debit notes and invoices: per agreement and decision, and the accepted spend per second.
CREATE FUNCTION tasks.tally_documents() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    runs text[];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        WITH changed AS (
            SELECT 1 AS sign, run_id, agreement_id, status, increment, decided_at FROM new_rows
            UNION ALL
            SELECT -1, run_id, agreement_id, status, increment, decided_at FROM old_rows
        ), facts AS (
            SELECT c.run_id, f.kind, f.key, f.status, f.at, c.sign AS n,
                   c.sign * c.increment AS amount
            FROM changed c
            CROSS JOIN LATERAL (VALUES
                ('document', c.agreement_id, TG_TABLE_NAME || ':' || c.status,
                 '-infinity'::timestamptz),
                ('spend_at', '', '', date_trunc('second', c.decided_at))
            ) AS f(kind, key, status, at)
            WHERE f.kind = 'document' OR c.status = 'accepted'
        ), added AS (
            INSERT INTO tasks.tally_delta (run_id, kind, key, status, at, n, amount)
            SELECT run_id, kind, key, status, at, sum(n), sum(amount) FROM facts
            GROUP BY run_id, kind, key, status, at
            HAVING sum(n) <> 0 OR sum(amount) <> 0
            RETURNING run_id
        )
        SELECT array_agg(DISTINCT run_id) INTO runs FROM added;
    ELSIF TG_OP = 'INSERT' THEN
        WITH changed AS (
            SELECT 1 AS sign, run_id, agreement_id, status, increment, decided_at FROM new_rows
        ), facts AS (
            SELECT c.run_id, f.kind, f.key, f.status, f.at, c.sign AS n,
                   c.sign * c.increment AS amount
            FROM changed c
            CROSS JOIN LATERAL (VALUES
                ('document', c.agreement_id, TG_TABLE_NAME || ':' || c.status,
                 '-infinity'::timestamptz),
                ('spend_at', '', '', date_trunc('second', c.decided_at))
            ) AS f(kind, key, status, at)
            WHERE f.kind = 'document' OR c.status = 'accepted'
        ), added AS (
            INSERT INTO tasks.tally_delta (run_id, kind, key, status, at, n, amount)
            SELECT run_id, kind, key, status, at, sum(n), sum(amount) FROM facts
            GROUP BY run_id, kind, key, status, at
            HAVING sum(n) <> 0 OR sum(amount) <> 0
            RETURNING run_id
        )
        SELECT array_agg(DISTINCT run_id) INTO runs FROM added;
    ELSE
        WITH changed AS (
            SELECT -1 AS sign, run_id, agreement_id, status, increment, decided_at FROM old_rows
        ), facts AS (
            SELECT c.run_id, f.kind, f.key, f.status, f.at, c.sign AS n,
                   c.sign * c.increment AS amount
            FROM changed c
            CROSS JOIN LATERAL (VALUES
                ('document', c.agreement_id, TG_TABLE_NAME || ':' || c.status,
                 '-infinity'::timestamptz),
                ('spend_at', '', '', date_trunc('second', c.decided_at))
            ) AS f(kind, key, status, at)
            WHERE f.kind = 'document' OR c.status = 'accepted'
        ), added AS (
            INSERT INTO tasks.tally_delta (run_id, kind, key, status, at, n, amount)
            SELECT run_id, kind, key, status, at, sum(n), sum(amount) FROM facts
            GROUP BY run_id, kind, key, status, at
            HAVING sum(n) <> 0 OR sum(amount) <> 0
            RETURNING run_id
        )
        SELECT array_agg(DISTINCT run_id) INTO runs FROM added;
    END IF;
    PERFORM tasks.fold_tally_now_and_then(runs);
    RETURN NULL;
END $$;

-- Batches: one per result or failed attempt, so counted in one small row per statement
-- (folded with the run's task deltas).
CREATE FUNCTION tasks.tally_batches() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO tasks.tally_delta (run_id, kind, n)
        SELECT run_id, 'batch', count(*) FROM new_rows GROUP BY run_id;
    ELSE
        INSERT INTO tasks.tally_delta (run_id, kind, n)
        SELECT run_id, 'batch', -count(*) FROM old_rows GROUP BY run_id;
    END IF;
    RETURN NULL;
END $$;

-- Transition tables allow one event per trigger: three for each table.
CREATE TRIGGER tally_inserted AFTER INSERT ON tasks.task
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks.tally_tasks();
CREATE TRIGGER tally_updated AFTER UPDATE ON tasks.task
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks.tally_tasks();
CREATE TRIGGER tally_deleted AFTER DELETE ON tasks.task
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks.tally_tasks();
CREATE TRIGGER tally_inserted AFTER INSERT ON tasks.debit_note
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks.tally_documents();
CREATE TRIGGER tally_updated AFTER UPDATE ON tasks.debit_note
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks.tally_documents();
CREATE TRIGGER tally_deleted AFTER DELETE ON tasks.debit_note
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks.tally_documents();
CREATE TRIGGER tally_inserted AFTER INSERT ON tasks.invoice
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks.tally_documents();
CREATE TRIGGER tally_updated AFTER UPDATE ON tasks.invoice
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks.tally_documents();
CREATE TRIGGER tally_deleted AFTER DELETE ON tasks.invoice
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks.tally_documents();
CREATE TRIGGER tally_inserted AFTER INSERT ON tasks.batch
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks.tally_batches();
CREATE TRIGGER tally_deleted AFTER DELETE ON tasks.batch
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tasks.tally_batches();

-- The runs already stored (the triggers above hold writers off until this commits).
INSERT INTO tasks.tally (run_id, kind, n)
SELECT run_id, 'tasks', count(*) FROM tasks.task GROUP BY run_id;
INSERT INTO tasks.tally (run_id, kind, n)
SELECT run_id, 'follow_up', count(*) FROM tasks.task WHERE parent_id IS NOT NULL
GROUP BY run_id;
INSERT INTO tasks.tally (run_id, kind, n)
SELECT run_id, 'batch', count(*) FROM tasks.batch GROUP BY run_id;
INSERT INTO tasks.tally (run_id, kind, key, n, amount)
SELECT run_id, 'done', coalesce(activity_id, ''), count(*),
       coalesce(sum(extract(epoch FROM finished_at - claimed_at)), 0)
FROM tasks.task WHERE status = 'done' GROUP BY run_id, coalesce(activity_id, '');
INSERT INTO tasks.tally (run_id, kind, at, n)
SELECT run_id, 'done_at', date_trunc('second', finished_at), count(*) FROM tasks.task
WHERE status = 'done' AND finished_at IS NOT NULL
GROUP BY run_id, date_trunc('second', finished_at);
INSERT INTO tasks.tally (run_id, kind, key, status, n, amount)
SELECT run_id, 'document', agreement_id, 'debit_note:' || status, count(*), sum(increment)
FROM tasks.debit_note GROUP BY run_id, agreement_id, status
UNION ALL
SELECT run_id, 'document', agreement_id, 'invoice:' || status, count(*), sum(increment)
FROM tasks.invoice GROUP BY run_id, agreement_id, status;
INSERT INTO tasks.tally (run_id, kind, at, n, amount)
SELECT run_id, 'spend_at', at, count(*), sum(increment) FROM (
    SELECT run_id, date_trunc('second', decided_at) AS at, increment
    FROM tasks.debit_note WHERE status = 'accepted'
    UNION ALL
    SELECT run_id, date_trunc('second', decided_at), increment
    FROM tasks.invoice WHERE status = 'accepted') AS accepted
GROUP BY run_id, at;
