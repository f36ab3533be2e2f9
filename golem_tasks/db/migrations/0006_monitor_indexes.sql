-- Indexes for the views of a run (summary, show, the dashboard, /metrics): each count and
-- sum they need is read from the run's own index entries, not from a scan of every run's
-- rows. Debit notes, invoices and batches are written once, so these cost little.

CREATE INDEX batch_run_idx ON tasks.batch (run_id);
CREATE INDEX debit_note_run_status_idx ON tasks.debit_note (run_id, status)
    INCLUDE (increment, decided_at, agreement_id);
CREATE INDEX invoice_run_status_idx ON tasks.invoice (run_id, status)
    INCLUDE (increment, decided_at, agreement_id);
