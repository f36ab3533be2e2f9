-- Follow-up tasks: tasks an app adds from a result (its on_result hook). They are stored in
-- the transaction that stores the result, keyed under their parent's key, so a crash or a
-- duplicate completion never adds them twice; parent_id tells them from fed tasks.
ALTER TABLE tasks.task
    ADD COLUMN parent_id bigint REFERENCES tasks.task ON DELETE CASCADE;

-- Deleting a run deletes its tasks: each needs its children found by index.
CREATE INDEX task_parent_idx ON tasks.task (parent_id) WHERE parent_id IS NOT NULL;
