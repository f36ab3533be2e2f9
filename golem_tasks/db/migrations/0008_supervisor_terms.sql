-- Who held a run, and when: one row per time a supervisor took the run's lock (a start, a
-- resume, a standby taking over, a holder taking its lock back after the database was
-- away), with when it last acted (its last tick). Two supervisors never act on one run at
-- once; this is the record that shows it, on the database's one clock.
CREATE TABLE tasks.supervisor_term (
    run_id      text NOT NULL REFERENCES tasks.run ON DELETE CASCADE,
    supervisor  text NOT NULL,                  -- host:pid
    took_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    seen_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, took_at)
);
