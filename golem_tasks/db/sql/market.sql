-- The market side of a run: demands, proposals, agreements.

-- name: insert_demand
INSERT INTO tasks.demand (id, run_id, properties, constraints, expires_at)
VALUES (%(id)s, %(run_id)s, %(properties)s, %(constraints)s, %(expires_at)s);

-- name: mark_demand_unsubscribed
UPDATE tasks.demand SET unsubscribed_at = now() WHERE id = %(id)s AND unsubscribed_at IS NULL;

-- name: subscribed_demands
SELECT * FROM tasks.demand WHERE run_id = %(run_id)s AND unsubscribed_at IS NULL;

-- name: insert_proposal
INSERT INTO tasks.proposal (id, run_id, demand_id, parent_id, issuer, provider_id, provider_name,
                            properties, constraints, price_start, price_cpu_sec, price_env_sec,
                            score, decision, decision_reason)
VALUES (%(id)s, %(run_id)s, %(demand_id)s, %(parent_id)s, %(issuer)s, %(provider_id)s,
        %(provider_name)s, %(properties)s, %(constraints)s, %(price_start)s, %(price_cpu_sec)s,
        %(price_env_sec)s, %(score)s, %(decision)s, %(decision_reason)s)
ON CONFLICT (id) DO NOTHING;

-- name: set_proposal_decision
UPDATE tasks.proposal SET decision = %(decision)s, decision_reason = %(reason)s
WHERE id = %(id)s;

-- name: insert_agreement
INSERT INTO tasks.agreement (id, run_id, proposal_id, provider_id, provider_name, expires_at)
VALUES (%(id)s, %(run_id)s, %(proposal_id)s, %(provider_id)s, %(provider_name)s,
        %(expires_at)s);

-- name: approve_agreement
UPDATE tasks.agreement SET status = 'approved', approved_at = now()
WHERE id = %(id)s AND status = 'pending';

-- name: reject_agreement
UPDATE tasks.agreement
SET status = 'rejected', terminate_reason = %(reason)s, avoid_reason = %(reason)s,
    terminated_at = now()
WHERE id = %(id)s AND status = 'pending';

-- name: request_agreement_end
-- Anyone who learns that an agreement is over says why; the supervisor then terminates it.
-- With %(avoid)s the provider is not hired again in this run.
UPDATE tasks.agreement
SET terminate_reason = coalesce(terminate_reason, %(reason)s),
    avoid_reason = CASE WHEN %(avoid)s THEN coalesce(avoid_reason, %(reason)s)
                        ELSE avoid_reason END
WHERE id = %(id)s AND status IN ('pending', 'approved');

-- name: avoid_provider_of
-- The provider of this agreement is not hired again in this run (cost, failures).
UPDATE tasks.agreement SET avoid_reason = coalesce(avoid_reason, %(reason)s) WHERE id = %(id)s;

-- name: mark_agreement_terminated
UPDATE tasks.agreement
SET status = 'terminated', terminated_at = now(),
    terminate_reason = coalesce(terminate_reason, %(reason)s)
WHERE id = %(id)s AND status IN ('pending', 'approved');

-- name: set_agreement_job
UPDATE tasks.agreement SET job_id = %(job_id)s WHERE id = %(id)s;

-- name: get_agreement
SELECT * FROM tasks.agreement WHERE id = %(id)s;

-- name: live_agreements
-- Agreements that hold (or are about to hold) a provider for this run, with their activity.
SELECT a.*, act.id AS activity_id, act.status AS activity_status,
       act.stop_reason AS activity_stop_reason
FROM tasks.agreement a
LEFT JOIN LATERAL (
    SELECT id, status, stop_reason FROM tasks.activity
    WHERE agreement_id = a.id ORDER BY created_at DESC LIMIT 1
) act ON true
WHERE a.run_id = %(run_id)s AND a.status IN ('pending', 'approved')
ORDER BY a.created_at;

-- name: avoided_providers
-- Providers not hired again in this run: their activity failed, or an agreement with them
-- was given up for their fault (rejected, not approved, too expensive, ...).
SELECT DISTINCT ag.provider_id
FROM tasks.activity act JOIN tasks.agreement ag ON ag.id = act.agreement_id
WHERE act.run_id = %(run_id)s AND act.status = 'failed'
UNION
SELECT DISTINCT provider_id FROM tasks.agreement
WHERE run_id = %(run_id)s AND avoid_reason IS NOT NULL;

-- name: agreement_ids_without_invoice
SELECT a.id FROM tasks.agreement a
WHERE a.run_id = %(run_id)s AND a.status = 'terminated' AND a.approved_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM tasks.invoice i WHERE i.agreement_id = a.id);

-- name: run_agreement_ids
SELECT id FROM tasks.agreement WHERE run_id = %(run_id)s;
