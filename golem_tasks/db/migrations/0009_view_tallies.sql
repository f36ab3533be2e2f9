-- Running tallies for the views of a run (summary, show, the dashboard, /metrics), so that
-- what they cost does not grow with the number of finished tasks, batches and documents.
--
-- Statement triggers on the written tables append the change each statement makes to
-- tasks.tally_delta (an insert never waits on another writer: no hot counter row for
-- concurrent claimers to queue on). Now and then a writer folds a run's deltas into
-- tasks.tally, under a try-lock so that folders never wait on each other either. Readers
-- sum tasks.tally_now (tally plus the deltas not folded yet): exact in any snapshot, since
-- a fold moves rows in one transaction.
--
-- Kinds of tally rows (key and status are '' and at is -infinity where they do not apply):
--   task       key = activity_id of the task ('' for none), status = its status;
--              n tasks, amount = seconds from claim to finish of the done ones
--   follow_up  n follow-up tasks (parent_id set)
--   batch      n batches
--   document   key = agreement_id, status = 'debit_note:STATUS' or 'invoice:STATUS';
--              n documents, amount = their increments
--   done_at    at = the second tasks finished (as done); n tasks
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

-- No index: folds keep it small, and every index would cost each writer's statement.
CREATE TABLE tasks.tally_delta (LIKE tasks.tally INCLUDING DEFAULTS)
    WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);

CREATE VIEW tasks.tally_now AS
SELECT run_id, kind, key, status, at, n, amount FROM tasks.tally
UNION ALL
SELECT run_id, kind, key, status, at, n, amount FROM tasks.tally_delta;

-- How often writers fold: one statement in FOLD_EVERY (the modulus below).
CREATE SEQUENCE tasks.tally_fold_tick CACHE 32;

-- Moves a run's deltas into its tally. Skipped (someone else is folding, or the caller's
-- snapshot is older than its statement and could see deltas already moved) rather than
-- waited for: the deltas stay readable, the next fold takes them.
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

CREATE FUNCTION tasks.fold_tally_now_and_then(p_run_ids text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    IF nextval('tasks.tally_fold_tick') % 16 <> 0 THEN
        RETURN;
    END IF;
    FOREACH r IN ARRAY p_run_ids LOOP
        PERFORM tasks.fold_tally(r);
    END LOOP;
END $$;

-- Tasks: one delta row per (run, activity, status) a statement changed, per second of
-- results and for follow-ups. Old rows count -1, new rows +1; an update that changes none
-- of these (a lease renewal) adds nothing.
CREATE FUNCTION tasks.tally_tasks() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    runs text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH changed AS (SELECT 1 AS sign, run_id, activity_id, status, parent_id, claimed_at, finished_at FROM new_rows),
        facts AS (
            SELECT c.run_id, f.kind, f.key, f.status, f.at, c.sign AS n, f.amount
            FROM changed c
            CROSS JOIN LATERAL (VALUES
                ('task', coalesce(c.activity_id, ''), c.status, '-infinity'::timestamptz,
                 CASE WHEN c.status = 'done'
                      THEN c.sign * coalesce(extract(epoch FROM c.finished_at - c.claimed_at), 0)
                      ELSE 0 END),
                ('follow_up', '', '', '-infinity', 0),
                ('done_at', '', '', date_trunc('second', c.finished_at), 0)
            ) AS f(kind, key, status, at, amount)
            WHERE f.kind = 'task' OR (f.kind = 'follow_up' AND c.parent_id IS NOT NULL)
               OR (f.kind = 'done_at' AND c.status = 'done' AND c.finished_at IS NOT NULL)
        ), added AS (
            INSERT INTO tasks.tally_delta (run_id, kind, key, status, at, n, amount)
            SELECT run_id, kind, key, status, at, sum(n), sum(amount) FROM facts
            GROUP BY run_id, kind, key, status, at
            HAVING sum(n) <> 0 OR sum(amount) <> 0
            RETURNING run_id
        )
        SELECT array_agg(DISTINCT run_id) INTO runs FROM added;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH changed AS (SELECT 1 AS sign, run_id, activity_id, status, parent_id, claimed_at, finished_at FROM new_rows UNION ALL SELECT -1 AS sign, run_id, activity_id, status, parent_id, claimed_at, finished_at FROM old_rows),
        facts AS (
            SELECT c.run_id, f.kind, f.key, f.status, f.at, c.sign AS n, f.amount
            FROM changed c
            CROSS JOIN LATERAL (VALUES
                ('task', coalesce(c.activity_id, ''), c.status, '-infinity'::timestamptz,
                 CASE WHEN c.status = 'done'
                      THEN c.sign * coalesce(extract(epoch FROM c.finished_at - c.claimed_at), 0)
                      ELSE 0 END),
                ('follow_up', '', '', '-infinity', 0),
                ('done_at', '', '', date_trunc('second', c.finished_at), 0)
            ) AS f(kind, key, status, at, amount)
            WHERE f.kind = 'task' OR (f.kind = 'follow_up' AND c.parent_id IS NOT NULL)
               OR (f.kind = 'done_at' AND c.status = 'done' AND c.finished_at IS NOT NULL)
        ), added AS (
            INSERT INTO tasks.tally_delta (run_id, kind, key, status, at, n, amount)
            SELECT run_id, kind, key, status, at, sum(n), sum(amount) FROM facts
            GROUP BY run_id, kind, key, status, at
            HAVING sum(n) <> 0 OR sum(amount) <> 0
            RETURNING run_id
        )
        SELECT array_agg(DISTINCT run_id) INTO runs FROM added;
    ELSE
        WITH changed AS (SELECT -1 AS sign, run_id, activity_id, status, parent_id, claimed_at, finished_at FROM old_rows),
        facts AS (
            SELECT c.run_id, f.kind, f.key, f.status, f.at, c.sign AS n, f.amount
            FROM changed c
            CROSS JOIN LATERAL (VALUES
                ('task', coalesce(c.activity_id, ''), c.status, '-infinity'::timestamptz,
                 CASE WHEN c.status = 'done'
                      THEN c.sign * coalesce(extract(epoch FROM c.finished_at - c.claimed_at), 0)
                      ELSE 0 END),
                ('follow_up', '', '', '-infinity', 0),
                ('done_at', '', '', date_trunc('second', c.finished_at), 0)
            ) AS f(kind, key, status, at, amount)
            WHERE f.kind = 'task' OR (f.kind = 'follow_up' AND c.parent_id IS NOT NULL)
               OR (f.kind = 'done_at' AND c.status = 'done' AND c.finished_at IS NOT NULL)
        ), added AS (
            INSERT INTO tasks.tally_delta (run_id, kind, key, status, at, n, amount)
            SELECT run_id, kind, key, status, at, sum(n), sum(amount) FROM facts
            GROUP BY run_id, kind, key, status, at
            HAVING sum(n) <> 0 OR sum(amount) <> 0
            RETURNING run_id
        )
        SELECT array_agg(DISTINCT run_id) INTO runs FROM added;
    END IF;
    IF runs IS NOT NULL THEN
        PERFORM tasks.fold_tally_now_and_then(runs);
    END IF;
    RETURN NULL;
END $$;

-- Debit notes and invoices: per agreement and decision, and the accepted spend per second.
CREATE FUNCTION tasks.tally_documents() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    runs text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH changed AS (SELECT 1 AS sign, run_id, agreement_id, status, increment, decided_at FROM new_rows),
        facts AS (
            SELECT c.run_id, f.kind, f.key, f.status, f.at, c.sign AS n, c.sign * c.increment AS amount
            FROM changed c
            CROSS JOIN LATERAL (VALUES
                ('document', c.agreement_id, TG_TABLE_NAME || ':' || c.status, '-infinity'::timestamptz),
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
    ELSIF TG_OP = 'UPDATE' THEN
        WITH changed AS (SELECT 1 AS sign, run_id, agreement_id, status, increment, decided_at FROM new_rows UNION ALL SELECT -1 AS sign, run_id, agreement_id, status, increment, decided_at FROM old_rows),
        facts AS (
            SELECT c.run_id, f.kind, f.key, f.status, f.at, c.sign AS n, c.sign * c.increment AS amount
            FROM changed c
            CROSS JOIN LATERAL (VALUES
                ('document', c.agreement_id, TG_TABLE_NAME || ':' || c.status, '-infinity'::timestamptz),
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
        WITH changed AS (SELECT -1 AS sign, run_id, agreement_id, status, increment, decided_at FROM old_rows),
        facts AS (
            SELECT c.run_id, f.kind, f.key, f.status, f.at, c.sign AS n, c.sign * c.increment AS amount
            FROM changed c
            CROSS JOIN LATERAL (VALUES
                ('document', c.agreement_id, TG_TABLE_NAME || ':' || c.status, '-infinity'::timestamptz),
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
    IF runs IS NOT NULL THEN
        PERFORM tasks.fold_tally_now_and_then(runs);
    END IF;
    RETURN NULL;
END $$;

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
INSERT INTO tasks.tally (run_id, kind, key, status, n, amount)
SELECT run_id, 'task', coalesce(activity_id, ''), status, count(*),
       coalesce(sum(extract(epoch FROM finished_at - claimed_at)) FILTER (WHERE status = 'done'), 0)
FROM tasks.task GROUP BY run_id, coalesce(activity_id, ''), status;
INSERT INTO tasks.tally (run_id, kind, n)
SELECT run_id, 'follow_up', count(*) FROM tasks.task WHERE parent_id IS NOT NULL GROUP BY run_id;
INSERT INTO tasks.tally (run_id, kind, at, n)
SELECT run_id, 'done_at', date_trunc('second', finished_at), count(*) FROM tasks.task
WHERE status = 'done' AND finished_at IS NOT NULL GROUP BY 1, 3;
INSERT INTO tasks.tally (run_id, kind, n)
SELECT run_id, 'batch', count(*) FROM tasks.batch GROUP BY run_id;
INSERT INTO tasks.tally (run_id, kind, key, status, n, amount)
SELECT run_id, 'document', agreement_id, 'debit_note:' || status, count(*), sum(increment)
FROM tasks.debit_note GROUP BY 1, 3, 4
UNION ALL
SELECT run_id, 'document', agreement_id, 'invoice:' || status, count(*), sum(increment)
FROM tasks.invoice GROUP BY 1, 3, 4;
INSERT INTO tasks.tally (run_id, kind, at, n, amount)
SELECT run_id, 'spend_at', at, sum(n), sum(amount) FROM (
    SELECT run_id, date_trunc('second', decided_at) AS at, 1 AS n, increment AS amount
    FROM tasks.debit_note WHERE status = 'accepted'
    UNION ALL
    SELECT run_id, date_trunc('second', decided_at), 1, increment
    FROM tasks.invoice WHERE status = 'accepted') AS accepted
GROUP BY run_id, at;
