-- The durable job queue (see docs/queue.md for the state machine and why it looks like this).

CREATE TYPE job_state AS ENUM (
    'queued',     -- accepted, never run yet (or handed back at shutdown)
    'running',    -- claimed by a worker holding a lease
    'waiting',    -- snoozed: waiting for remote eventual consistency; no attempt consumed
    'retrying',   -- an attempt failed transiently; runs again at run_at
    'succeeded',  -- terminal
    'failed',     -- terminal
    'cancelled'   -- terminal
);

CREATE TABLE job (
    id                  uuid PRIMARY KEY,
    -- Acceptance order; per-target FIFO compares this, never timestamps (clocks of replicas differ).
    seq                 bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    kind                text        NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 64),
    -- What the job acts on (e.g. a cluster/registry pair); jobs of one target run one at a time, in seq order.
    target_key          text        CHECK (char_length(target_key) <= 1024),
    -- Identical requests (same kind and canonical arguments) share a job while it is queued or running.
    dedup_key           text,
    args                jsonb       NOT NULL,
    state               job_state   NOT NULL DEFAULT 'queued',
    run_at              timestamptz NOT NULL DEFAULT now(),
    attempts            integer     NOT NULL DEFAULT 0,   -- consumed attempts: failures and rescues, never snoozes
    max_attempts        integer     NOT NULL CHECK (max_attempts > 0),
    snoozes             integer     NOT NULL DEFAULT 0,   -- waits for eventual consistency
    deadline_at         timestamptz NOT NULL,
    lease_epoch         integer     NOT NULL DEFAULT 0,   -- fencing token: +1 on every claim
    locked_by           text,
    lease_until         timestamptz,                      -- deliberately not indexed: heartbeats stay HOT updates
    checkpoint          jsonb,
    result              jsonb,
    last_error          jsonb,
    wait                jsonb,                            -- the condition a waiting job waits for
    cancel_requested_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    finalized_at        timestamptz,
    CONSTRAINT finalized_iff_terminal
        CHECK ((state IN ('succeeded', 'failed', 'cancelled')) = (finalized_at IS NOT NULL)),
    CONSTRAINT lease_iff_running
        CHECK ((state = 'running') = (lease_until IS NOT NULL))
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- Every state change rewrites the row's index entries (state is in the partial predicates), so
-- the index list is kept short: the hot path touches the primary key, seq, and two or three of these.
-- Claim: due jobs in run_at order (matches the claim's ORDER BY exactly).
CREATE INDEX job_due ON job (run_at, seq) WHERE state IN ('queued', 'waiting', 'retrying');
-- Per-target FIFO ("is an older unfinished job of my target there?") and listing by target.
CREATE INDEX job_target ON job (target_key, seq) WHERE target_key IS NOT NULL;
-- Dedup of jobs without a target.
CREATE INDEX job_dedup_active ON job (dedup_key)
    WHERE state IN ('queued', 'running', 'waiting', 'retrying') AND dedup_key IS NOT NULL AND target_key IS NULL;
-- Backstop for per-target serialisation: never two running jobs of one target, whatever the code does.
CREATE UNIQUE INDEX job_one_running_per_target ON job (target_key)
    WHERE state = 'running' AND target_key IS NOT NULL;
-- Rescuer scan: the running jobs (few: at most the worker slots of all replicas).
CREATE INDEX job_running ON job (seq) WHERE state = 'running';
-- Retention pruning.
CREATE INDEX job_finalized ON job (finalized_at) WHERE finalized_at IS NOT NULL;

-- The job's timeline: attempts, waits, errors, cancellations, rescues.
CREATE TABLE job_event (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- No foreign key: the check would lock the job row on every event; pruning deletes both.
    job_id  uuid        NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    type    text        NOT NULL,
    attempt integer     NOT NULL,
    data    jsonb
);
CREATE INDEX job_event_job ON job_event (job_id, id);

-- Idempotency-Key support for POST endpoints: a repeat gets the first answer's status and job.
CREATE TABLE idempotency_key (
    scope        text        NOT NULL,   -- method + route
    key          text        NOT NULL,
    request_hash text        NOT NULL,   -- a reused key with another body is an error, not a replay
    status       smallint    NOT NULL,
    job_id       uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_key_created ON idempotency_key (created_at);
