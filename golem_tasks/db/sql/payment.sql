-- Money: allocations, debit notes, invoices and the hourly spend they add up to.
-- Every decision runs under a per-run transaction lock, so two notes can never both pass
-- a budget check that only one of them fits.

-- name: spend_lock
SELECT pg_advisory_xact_lock(hashtext('golem-tasks spend'), hashtext(%(run_id)s));

-- name: insert_allocation
INSERT INTO tasks.allocation (id, run_id, amount, platform, address, period_start)
VALUES (%(id)s, %(run_id)s, %(amount)s, %(platform)s, %(address)s, %(period_start)s)
ON CONFLICT (id) DO NOTHING;

-- name: current_allocation
-- The allocation of the hour that contains %(now)s, if it was made.
SELECT * FROM tasks.allocation
WHERE run_id = %(run_id)s AND released_at IS NULL
  AND period_start <= %(now)s AND %(now)s < period_start + interval '1 hour'
ORDER BY period_start DESC, created_at DESC LIMIT 1;

-- name: first_allocation_start
-- Run-hours are counted from the first allocation (on the supervisor's clock).
SELECT min(period_start) AS start FROM tasks.allocation WHERE run_id = %(run_id)s;

-- name: unreleased_allocations
SELECT * FROM tasks.allocation WHERE run_id = %(run_id)s AND released_at IS NULL
ORDER BY period_start;

-- name: get_allocation
SELECT * FROM tasks.allocation WHERE id = %(id)s;

-- name: set_debit_note_paid_from
UPDATE tasks.debit_note SET paid_from = %(allocation_id)s WHERE id = %(id)s;

-- name: set_invoice_paid_from
UPDATE tasks.invoice SET paid_from = %(allocation_id)s WHERE id = %(id)s;

-- name: mark_allocation_released
UPDATE tasks.allocation SET released_at = now() WHERE id = %(id)s;

-- name: get_debit_note
SELECT * FROM tasks.debit_note WHERE id = %(id)s;

-- name: get_invoice
SELECT * FROM tasks.invoice WHERE id = %(id)s;

-- name: last_accepted_note_total
-- What a debit note's earlier accepted notes cover; ``invoiced`` when the agreement's
-- invoice was accepted already: the invoice is the agreement's final total, so a note
-- decided after it adds nothing.
SELECT coalesce(max(total_amount_due), 0) AS total,
       EXISTS (SELECT 1 FROM tasks.invoice
               WHERE agreement_id = %(agreement_id)s AND status = 'accepted') AS invoiced
FROM tasks.debit_note WHERE activity_id = %(activity_id)s AND status = 'accepted';

-- name: agreement_accepted_notes_total
-- What the accepted debit notes of all the agreement's activities already cover.
SELECT coalesce(sum(per_activity.total), 0) AS total, false AS invoiced
FROM (SELECT max(total_amount_due) AS total FROM tasks.debit_note
      WHERE agreement_id = %(agreement_id)s AND status = 'accepted'
      GROUP BY activity_id) AS per_activity;

-- name: spent_since
-- Accepted spend of the run after %(since)s: the budget's sliding hour.
SELECT coalesce(sum(increment), 0) AS spent FROM (
    SELECT increment FROM tasks.debit_note
    WHERE run_id = %(run_id)s AND status = 'accepted' AND decided_at > %(since)s
    UNION ALL
    SELECT increment FROM tasks.invoice
    WHERE run_id = %(run_id)s AND status = 'accepted' AND decided_at > %(since)s
) AS accepted;

-- name: insert_debit_note
-- A note 'refused' by an earlier version is decided again when it comes back.
INSERT INTO tasks.debit_note (id, run_id, agreement_id, activity_id, total_amount_due,
                              increment, status, reason, allocation_id, received_at, decided_at,
                              issued_at)
VALUES (%(id)s, %(run_id)s, %(agreement_id)s, %(activity_id)s, %(amount)s,
        %(increment)s, %(status)s, %(reason)s, %(allocation_id)s, %(now)s, %(now)s,
        %(issued_at)s)
ON CONFLICT (id) DO UPDATE
SET increment = excluded.increment, status = excluded.status, reason = excluded.reason,
    allocation_id = excluded.allocation_id, decided_at = excluded.decided_at
WHERE tasks.debit_note.status = 'refused';

-- name: insert_invoice
-- An invoice 'refused' by an earlier version is decided again when it comes back.
INSERT INTO tasks.invoice (id, run_id, agreement_id, amount, increment, status, reason,
                           allocation_id, received_at, decided_at)
VALUES (%(id)s, %(run_id)s, %(agreement_id)s, %(amount)s, %(increment)s, %(status)s,
        %(reason)s, %(allocation_id)s, %(now)s, %(now)s)
ON CONFLICT (id) DO UPDATE
SET increment = excluded.increment, status = excluded.status, reason = excluded.reason,
    allocation_id = excluded.allocation_id, decided_at = excluded.decided_at
WHERE tasks.invoice.status = 'refused';

-- name: activity_cost
-- What an activity has cost so far (its last accepted note), what it produced, and how
-- long it has been working.
SELECT (SELECT coalesce(max(total_amount_due), 0) FROM tasks.debit_note
        WHERE activity_id = %(activity_id)s AND status = 'accepted') AS cost,
       (SELECT count(*) FROM tasks.task
        WHERE activity_id = %(activity_id)s AND status = 'done') AS results,
       (SELECT extract(epoch FROM now() - coalesce(ready_at, created_at))
        FROM tasks.activity WHERE id = %(activity_id)s) AS age_s;

-- name: budget_agreements
-- Agreements whose charges are not final yet: made, and without a decided invoice. Ended
-- ones count for an hour after their end (an invoice that never comes stops counting).
SELECT a.id, a.status, a.provider_id, p.properties
FROM tasks.agreement a LEFT JOIN tasks.proposal p ON p.id = a.proposal_id
WHERE a.run_id = %(run_id)s AND a.status IN ('pending', 'approved', 'terminated')
  AND (a.status <> 'terminated' OR (a.approved_at IS NOT NULL AND a.terminated_at > %(since)s))
  AND NOT EXISTS (SELECT 1 FROM tasks.invoice i
                  WHERE i.agreement_id = a.id AND i.status IN ('accepted', 'rejected'));

-- name: budget_activities
-- The activities of those agreements, each with its last accepted debit note (how much of
-- its cumulative total is paid, and up to when it goes).
SELECT act.id, act.agreement_id, act.status, act.created_at, act.stopped_at,
       n.total_amount_due AS note_total, coalesce(n.issued_at, n.received_at) AS note_at
FROM tasks.activity act
LEFT JOIN LATERAL (
    SELECT total_amount_due, issued_at, received_at FROM tasks.debit_note
    WHERE activity_id = act.id AND status = 'accepted'
    ORDER BY total_amount_due DESC, decided_at DESC LIMIT 1
) n ON true
WHERE act.agreement_id = ANY(%(agreement_ids)s::text[]);
