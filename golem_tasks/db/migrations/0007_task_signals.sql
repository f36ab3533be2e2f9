-- Signals instead of polls on the task path (LISTEN/NOTIFY), so that no worker waits for a
-- poll while there is work and the feeder tops the window up before it runs dry.

-- The feeder asks to be woken when the task at this position (or a later one) is claimed:
-- the claim that reaches it clears it and notifies channel golem_tasks_feed (payload: run
-- id). NULL: nothing asked.
ALTER TABLE tasks.run ADD COLUMN feed_wake_at bigint;

-- A task that becomes pending (fed, given back, retried) wakes idle workers: channel
-- golem_tasks_pending, payload the run id (PostgreSQL folds duplicates of a transaction).
CREATE FUNCTION tasks.notify_task_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('golem_tasks_pending', NEW.run_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER task_pending_notify
    AFTER INSERT OR UPDATE OF status ON tasks.task
    FOR EACH ROW WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION tasks.notify_task_pending();
