-- ARM quota shared by every replica (docs/queue.md, "ARM quota").
--
-- ARM throttles with token buckets per (subscription or tenant, calling principal, reads /
-- writes / deletes). acr-attach keeps its own copy of each bucket here, as GCRA: one
-- "theoretical arrival time" per bucket. A call may go when `tat - tau <= now`, where
-- `tau = (burst - 1) / rate`; each call moves `tat` on by `1 / rate`. Taking a token that is not
-- there yet *reserves* the next free slot: the job gets a ticket for that moment and waits for it
-- (no worker held), so waiting jobs are served in the order they asked, at exactly the rate ARM
-- allows, instead of all waking at once.
CREATE TABLE arm_quota (
    bucket          text PRIMARY KEY,          -- '<subscription id|tenant>:<principal>:<reads|writes|deletes>'
    tat             timestamptz NOT NULL,      -- GCRA theoretical arrival time
    throttled_until timestamptz,               -- end of the last 429's Retry-After (shown, not needed)
    throttled_total bigint NOT NULL DEFAULT 0  -- 429s ARM answered on this bucket
);

-- A slot reserved by a job that could not call at once; used when the job comes back.
CREATE TABLE arm_quota_ticket (
    job_id uuid        NOT NULL,
    bucket text        NOT NULL,
    at     timestamptz NOT NULL,  -- the reserved slot (the latest, if several calls reserved)
    n      integer     NOT NULL,  -- reserved calls not yet made
    PRIMARY KEY (job_id, bucket)
);
CREATE INDEX arm_quota_ticket_at ON arm_quota_ticket (at);

-- Take one token of `p_bucket` for job `p_job`: returns the seconds to wait before calling
-- (0: call now). A wait of at most `p_inline` seconds is the caller's to sleep in place (no
-- ticket); a longer one is a ticket the job uses when it comes back.
CREATE FUNCTION arm_quota_take(p_bucket text, p_job uuid, p_per_second float8, p_burst float8, p_inline float8)
RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    t_now   timestamptz := clock_timestamp();
    ticket  arm_quota_ticket%ROWTYPE;
    cur     timestamptz;
    allowed timestamptz;
    wait    float8;
BEGIN
    SELECT * INTO ticket FROM arm_quota_ticket WHERE job_id = p_job AND bucket = p_bucket FOR UPDATE;
    IF FOUND THEN
        wait := greatest(0, extract(epoch FROM ticket.at - t_now));
        IF wait > p_inline THEN
            RETURN wait;                        -- woke early: keep the ticket
        END IF;
        IF ticket.n > 1 THEN
            UPDATE arm_quota_ticket SET n = n - 1 WHERE job_id = p_job AND bucket = p_bucket;
        ELSE
            DELETE FROM arm_quota_ticket WHERE job_id = p_job AND bucket = p_bucket;
        END IF;
        RETURN wait;
    END IF;

    INSERT INTO arm_quota (bucket, tat) VALUES (p_bucket, t_now) ON CONFLICT (bucket) DO NOTHING;
    SELECT greatest(tat, t_now) INTO cur FROM arm_quota WHERE bucket = p_bucket FOR UPDATE;
    UPDATE arm_quota SET tat = cur + make_interval(secs => 1.0 / p_per_second) WHERE bucket = p_bucket;
    allowed := cur - make_interval(secs => (p_burst - 1) / p_per_second);
    wait := greatest(0, extract(epoch FROM allowed - t_now));
    IF wait > p_inline THEN
        INSERT INTO arm_quota_ticket (job_id, bucket, at, n) VALUES (p_job, p_bucket, allowed, 1)
        ON CONFLICT (job_id, bucket) DO UPDATE
            SET at = greatest(arm_quota_ticket.at, excluded.at), n = arm_quota_ticket.n + 1;
    END IF;
    RETURN wait;
END $$;

-- ARM said this bucket holds fewer tokens than we thought: a 429 (`p_retry_after` seconds
-- until the next token) or an `x-ms-ratelimit-remaining-*` header (`p_remaining` tokens).
-- Moves `tat` so that nobody calls before ARM has the token: every job of the bucket slows,
-- not only the one that was told.
CREATE FUNCTION arm_quota_observe(p_bucket text, p_per_second float8, p_burst float8,
                                  p_retry_after float8, p_remaining float8)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t_now timestamptz := clock_timestamp();
    tau   interval := make_interval(secs => (p_burst - 1) / p_per_second);
    floor_tat timestamptz;
BEGIN
    IF p_retry_after IS NOT NULL THEN
        floor_tat := t_now + make_interval(secs => p_retry_after) + tau;
    ELSE
        -- `remaining` tokens left means the next `remaining` calls may go now, the rest at the rate.
        floor_tat := t_now + tau - make_interval(secs => (p_remaining - 1) / p_per_second);
    END IF;
    INSERT INTO arm_quota (bucket, tat) VALUES (p_bucket, floor_tat)
    ON CONFLICT (bucket) DO UPDATE SET tat = greatest(arm_quota.tat, excluded.tat);
    IF p_retry_after IS NOT NULL THEN
        UPDATE arm_quota
           SET throttled_until = t_now + make_interval(secs => p_retry_after),
               throttled_total = throttled_total + 1
         WHERE bucket = p_bucket;
    END IF;
END $$;
