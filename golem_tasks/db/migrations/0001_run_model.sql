-- The run model: every fact a run needs to survive a crash, be watched, and be audited.
-- Everything hangs off tasks.run and is deleted with it (ON DELETE CASCADE).
-- Money is numeric (never float); times are timestamptz.

CREATE TABLE tasks.run (
    id                  text PRIMARY KEY,
    app                 text NOT NULL,              -- the app module as given (name or path)
    status              text NOT NULL DEFAULT 'running'
                        CHECK (status IN ('running', 'stopping', 'finished', 'failed', 'stopped')),
    stop_reason         text,
    workers             integer NOT NULL CHECK (workers >= 0),
    budget_per_hour     numeric NOT NULL CHECK (budget_per_hour > 0),
    max_price           numeric CHECK (max_price IS NULL OR max_price >= 0),
    subnet              text NOT NULL,
    payment_platform    text NOT NULL,
    settings            jsonb NOT NULL DEFAULT '{}',  -- warm-up, price limits, feed window ...
    queue               text NOT NULL DEFAULT 'golem-tasks',  -- procrastinate queue of its jobs
    feed_done           boolean NOT NULL DEFAULT false,       -- get_tasks() is exhausted
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    supervisor          text,                       -- host:pid of the supervisor last seen
    supervisor_seen_at  timestamptz
);
CREATE INDEX run_created_idx ON tasks.run (created_at DESC);

-- One allocation per hour of the run, each for the hourly budget.
CREATE TABLE tasks.allocation (
    id              text PRIMARY KEY,               -- yagna's allocation id
    run_id          text NOT NULL REFERENCES tasks.run ON DELETE CASCADE,
    amount          numeric NOT NULL CHECK (amount >= 0),
    platform        text NOT NULL,
    address         text,
    period_start    timestamptz NOT NULL,           -- the hour this allocation serves
    created_at      timestamptz NOT NULL DEFAULT now(),
    released_at     timestamptz
);
CREATE INDEX allocation_run_idx ON tasks.allocation (run_id, period_start DESC);

CREATE TABLE tasks.demand (
    id              text PRIMARY KEY,               -- yagna's subscription id
    run_id          text NOT NULL REFERENCES tasks.run ON DELETE CASCADE,
    properties      jsonb NOT NULL,
    constraints     text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    unsubscribed_at timestamptz
);
CREATE INDEX demand_run_idx ON tasks.demand (run_id, created_at DESC);

-- Offers from providers and our counter-proposals, with the price terms they carry.
CREATE TABLE tasks.proposal (
    id              text PRIMARY KEY,               -- yagna's proposal id
    run_id          text NOT NULL REFERENCES tasks.run ON DELETE CASCADE,
    demand_id       text NOT NULL REFERENCES tasks.demand ON DELETE CASCADE,
    parent_id       text REFERENCES tasks.proposal ON DELETE SET NULL,
    issuer          text NOT NULL CHECK (issuer IN ('provider', 'requestor')),
    provider_id     text NOT NULL,
    provider_name   text,
    properties      jsonb NOT NULL,
    constraints     text,
    price_start     numeric,                        -- linear pricing: fixed part
    price_cpu_sec   numeric,                        -- per cpu second
    price_env_sec   numeric,                        -- per wall-clock (duration) second
    score           numeric,                        -- estimated cost of a reference hour: lower is better
    decision        text CHECK (decision IN ('countered', 'rejected', 'agreed', 'expired')),
    decision_reason text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX proposal_run_provider_idx ON tasks.proposal (run_id, provider_id);
CREATE INDEX proposal_parent_idx ON tasks.proposal (parent_id);

CREATE TABLE tasks.agreement (
    id              text PRIMARY KEY,               -- yagna's agreement id
    run_id          text NOT NULL REFERENCES tasks.run ON DELETE CASCADE,
    proposal_id     text REFERENCES tasks.proposal ON DELETE SET NULL,
    provider_id     text NOT NULL,
    provider_name   text,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected', 'terminated')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    approved_at     timestamptz,
    expires_at      timestamptz,                    -- golem.srv.comp.expiration of its demand
    terminated_at   timestamptz,
    terminate_reason text,
    avoid_reason    text,                           -- why its provider is not hired again in this run
    job_id          bigint                          -- the procrastinate job driving it
);
CREATE INDEX agreement_run_status_idx ON tasks.agreement (run_id, status);
CREATE INDEX agreement_proposal_idx ON tasks.agreement (proposal_id);

CREATE TABLE tasks.activity (
    id              text PRIMARY KEY,               -- yagna's activity id
    run_id          text NOT NULL REFERENCES tasks.run ON DELETE CASCADE,
    agreement_id    text NOT NULL REFERENCES tasks.agreement ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'new'
                    CHECK (status IN ('new', 'deploying', 'ready', 'stopped', 'failed')),
    worker          text,                           -- host:pid of the worker driving it
    heartbeat_at    timestamptz,                    -- the driving worker's last sign of life
    stop_request    text,                           -- why the supervisor wants it stopped
    stop_reason     text,                           -- why it stopped
    created_at      timestamptz NOT NULL DEFAULT now(),
    ready_at        timestamptz,
    stopped_at      timestamptz
);
CREATE INDEX activity_run_status_idx ON tasks.activity (run_id, status);
CREATE INDEX activity_agreement_idx ON tasks.activity (agreement_id);

CREATE TABLE tasks.task (
    id              bigserial PRIMARY KEY,
    run_id          text NOT NULL REFERENCES tasks.run ON DELETE CASCADE,
    key             text NOT NULL,                  -- the task's own id, or its position
    position        bigint NOT NULL,                -- order in which get_tasks() produced it
    data            jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'claimed', 'done', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    integer NOT NULL CHECK (max_attempts > 0),
    timeout_s       double precision CHECK (timeout_s IS NULL OR timeout_s > 0),
    result          jsonb,
    error           text,
    activity_id     text REFERENCES tasks.activity ON DELETE SET NULL,  -- holder of the claim, then the one that ran it
    created_at      timestamptz NOT NULL DEFAULT now(),
    claimed_at      timestamptz,
    lease_until     timestamptz,                    -- a claim whose lease passed is free again
    started_at      timestamptz,                    -- first claim
    finished_at     timestamptz,
    UNIQUE (run_id, key),
    CHECK (status <> 'claimed' OR (activity_id IS NOT NULL AND lease_until IS NOT NULL))
);
-- The claim query walks this index in feed order.
CREATE INDEX task_pending_idx ON tasks.task (run_id, position) WHERE status = 'pending';
CREATE INDEX task_claimed_idx ON tasks.task (run_id, lease_until) WHERE status = 'claimed';
CREATE INDEX task_run_status_idx ON tasks.task (run_id, status);
CREATE INDEX task_activity_idx ON tasks.task (activity_id);

-- The ExeScript batches each task ran, stored with the task's result.
CREATE TABLE tasks.batch (
    id              text PRIMARY KEY,               -- yagna's batch id
    run_id          text NOT NULL REFERENCES tasks.run ON DELETE CASCADE,
    activity_id     text NOT NULL REFERENCES tasks.activity ON DELETE CASCADE,
    task_id         bigint REFERENCES tasks.task ON DELETE CASCADE,
    attempt         integer,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX batch_task_idx ON tasks.batch (task_id);
CREATE INDEX batch_activity_idx ON tasks.batch (activity_id);

-- Every debit note, its cumulative amount, what it adds to the spend, and our decision.
CREATE TABLE tasks.debit_note (
    id              text PRIMARY KEY,               -- yagna's debit note id
    run_id          text NOT NULL REFERENCES tasks.run ON DELETE CASCADE,
    agreement_id    text NOT NULL,
    activity_id     text NOT NULL,
    total_amount_due numeric NOT NULL CHECK (total_amount_due >= 0),
    increment       numeric NOT NULL CHECK (increment >= 0),   -- over the last accepted note of the activity
    status          text NOT NULL CHECK (status IN ('accepted', 'refused')),
    reason          text,
    allocation_id   text REFERENCES tasks.allocation ON DELETE SET NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX debit_note_spend_idx ON tasks.debit_note (run_id, decided_at) WHERE status = 'accepted';
CREATE INDEX debit_note_activity_idx ON tasks.debit_note (activity_id, total_amount_due DESC);
CREATE INDEX debit_note_agreement_idx ON tasks.debit_note (agreement_id);

CREATE TABLE tasks.invoice (
    id              text PRIMARY KEY,               -- yagna's invoice id
    run_id          text NOT NULL REFERENCES tasks.run ON DELETE CASCADE,
    agreement_id    text NOT NULL,
    amount          numeric NOT NULL CHECK (amount >= 0),
    increment       numeric NOT NULL CHECK (increment >= 0),   -- beyond the agreement's accepted notes
    status          text NOT NULL CHECK (status IN ('accepted', 'refused')),
    reason          text,
    allocation_id   text REFERENCES tasks.allocation ON DELETE SET NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoice_spend_idx ON tasks.invoice (run_id, decided_at) WHERE status = 'accepted';
CREATE INDEX invoice_agreement_idx ON tasks.invoice (agreement_id);

-- The app's results count over time, for progress views.
CREATE TABLE tasks.results_history (
    run_id          text NOT NULL REFERENCES tasks.run ON DELETE CASCADE,
    at              timestamptz NOT NULL DEFAULT now(),
    results_cnt     bigint NOT NULL,
    PRIMARY KEY (run_id, at)
);

-- Every failure worth telling a user about, from any process.
CREATE TABLE tasks.error (
    id              bigserial PRIMARY KEY,
    run_id          text NOT NULL REFERENCES tasks.run ON DELETE CASCADE,
    at              timestamptz NOT NULL DEFAULT now(),
    source          text NOT NULL,                  -- supervisor, worker, market, payment, ...
    kind            text NOT NULL,                  -- deploy, task, timeout, budget, cost, ...
    message         text NOT NULL,
    agreement_id    text,
    activity_id     text,
    task_id         bigint
);
CREATE INDEX error_run_idx ON tasks.error (run_id, at DESC);
