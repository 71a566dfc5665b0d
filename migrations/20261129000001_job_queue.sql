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
-- Per-target FIFO and dedup: "is an older unfinished job of my target there?" (Finished jobs
-- are left out so that completing a job adds no entry here.)
CREATE INDEX job_target ON job (target_key, seq)
    WHERE state IN ('queued', 'running', 'waiting', 'retrying') AND target_key IS NOT NULL;
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

-- The job's timeline: attempts, waits, errors, cancellations, rescues. The happy path is in the
-- job row itself (created_at, started_at, finalized_at): the API derives "enqueued", the first
-- "started" and "succeeded" from it, so a job that just works costs no event rows.
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

-- Claim up to p_limit due jobs for a worker, in one round trip.
-- Two statements on purpose: each has a good generic plan (an index scan of job_due; the primary
-- key), cached per connection, so a claim is not re-planned every time: planning the one-statement
-- form cost more than running it. The candidates come from a subquery
-- evaluated once with SKIP LOCKED (an UPDATE ... WHERE id IN (subquery with LIMIT) may lock more
-- rows than LIMIT, Postgres bug #15715). A job is eligible only when no older unfinished job of
-- its target exists: one target runs one job at a time, in acceptance order.
CREATE FUNCTION claim_jobs(p_limit integer, p_worker text, p_lease_secs double precision, p_kinds text[])
RETURNS SETOF job LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    ids uuid[];
BEGIN
    SELECT array_agg(c.id) INTO ids FROM (
        SELECT j.id FROM job j
        WHERE j.state IN ('queued', 'waiting', 'retrying') AND j.run_at <= now() AND j.kind = ANY(p_kinds)
          AND (j.target_key IS NULL OR NOT EXISTS (
                SELECT 1 FROM job e WHERE e.target_key = j.target_key
                  AND e.state IN ('queued', 'running', 'waiting', 'retrying') AND e.seq < j.seq))
        ORDER BY j.run_at, j.seq
        LIMIT p_limit
        FOR NO KEY UPDATE OF j SKIP LOCKED) c;
    IF ids IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH claimed AS (
        UPDATE job SET state = 'running', lease_epoch = lease_epoch + 1, locked_by = p_worker,
            lease_until = now() + make_interval(secs => p_lease_secs),
            started_at = coalesce(started_at, now()), updated_at = now()
        WHERE id = ANY(ids)
        RETURNING job.*),
    -- The first start is in the row (started_at); later ones are kept as events.
    ev AS (
        INSERT INTO job_event (job_id, type, attempt, data)
        SELECT claimed.id, 'started', claimed.attempts + 1,
               jsonb_build_object('worker', p_worker, 'leaseEpoch', claimed.lease_epoch)
        FROM claimed WHERE claimed.lease_epoch > 1)
    SELECT * FROM claimed;
END
$$;

-- Enqueue in one round trip. Enqueues of one target (or, without a target, of one dedup key)
-- serialise on a transaction advisory lock; each statement after it takes a fresh snapshot
-- (a VOLATILE function in READ COMMITTED), so it sees every enqueue that held the lock before.
-- Dedup: the target's latest unfinished job is returned instead of a new one when it is
-- identical ("latest" matters: attach, detach, attach must run all three). The caller tells a
-- new job by its id (p_id). The NOTIFY is delivered at commit.
CREATE FUNCTION enqueue_job(p_id uuid, p_kind text, p_target text, p_dedup text, p_args jsonb,
                            p_run_at timestamptz, p_max_attempts integer, p_deadline_secs double precision)
RETURNS SETOF job LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    latest job;
BEGIN
    IF coalesce(p_target, p_dedup) IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(coalesce(p_target, p_dedup), 7412));
    END IF;
    IF p_dedup IS NOT NULL AND p_target IS NOT NULL THEN
        SELECT * INTO latest FROM job
        WHERE target_key = p_target AND state IN ('queued', 'running', 'waiting', 'retrying')
        ORDER BY seq DESC LIMIT 1;
    ELSIF p_dedup IS NOT NULL THEN
        SELECT * INTO latest FROM job
        WHERE dedup_key = p_dedup AND target_key IS NULL AND state IN ('queued', 'running', 'waiting', 'retrying')
        ORDER BY seq DESC LIMIT 1;
    END IF;
    IF latest.id IS NOT NULL AND latest.dedup_key = p_dedup THEN
        RETURN NEXT latest;
        RETURN;
    END IF;
    RETURN QUERY
    INSERT INTO job (id, kind, target_key, dedup_key, args, run_at, max_attempts, deadline_at)
    VALUES (p_id, p_kind, p_target, p_dedup, p_args, coalesce(p_run_at, now()), p_max_attempts,
            now() + make_interval(secs => p_deadline_secs))
    RETURNING *;
    PERFORM pg_notify('acr_attach_jobs', '');
END
$$;
