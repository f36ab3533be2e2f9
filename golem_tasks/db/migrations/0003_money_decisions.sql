-- Money decisions made prospectively: a document that does not fit the budget is rejected
-- for good (through yagna's reject call), not refused and decided again later; and a debit
-- note keeps the time its provider issued it, which is how far its cumulative total goes.

ALTER TABLE tasks.debit_note DROP CONSTRAINT debit_note_status_check;
ALTER TABLE tasks.debit_note ADD CONSTRAINT debit_note_status_check
    CHECK (status IN ('accepted', 'refused', 'rejected'));
ALTER TABLE tasks.invoice DROP CONSTRAINT invoice_status_check;
ALTER TABLE tasks.invoice ADD CONSTRAINT invoice_status_check
    CHECK (status IN ('accepted', 'refused', 'rejected'));

-- The provider's timestamp of the note: the usage its total covers ends there.
ALTER TABLE tasks.debit_note ADD COLUMN issued_at timestamptz;
-- The allocation a decision was finally paid from, when not the one it was decided under
-- (that one was released before yagna could be told).
ALTER TABLE tasks.debit_note ADD COLUMN paid_from text;
ALTER TABLE tasks.invoice ADD COLUMN paid_from text;
