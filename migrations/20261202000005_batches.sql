-- Batches (`POST /v1/batches`): one request for many attach or detach jobs (one registry to many
-- clusters, listed or selected through Azure Resource Graph, or one cluster to many registries).
-- A batch job (`batch-expand`) turns the items into ordinary attach/detach jobs; an item points
-- at its job, whose row is the truth about it. See src/ops/batch.rs and the README ("Batches").
CREATE TABLE batch (
    id                  uuid        PRIMARY KEY,
    -- Listing order (newest first); never compared across replicas' clocks.
    seq                 bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    action              text        NOT NULL CHECK (action IN ('attach', 'detach')),
    -- The request as accepted, ids in canonical form: {registry, clusters} | {cluster,
    -- registries} | {registry, select}.
    request             jsonb       NOT NULL,
    -- The caller as the audit trail names it (entra:<oid>, key:<name>, anonymous): batches
    -- belong to it, as jobs belong to their requesters.
    requested_by        text        NOT NULL CHECK (char_length(requested_by) <= 200),
    -- The caller as the policy sees it (kind, id, app id, roles): the expansion authorises
    -- every item for this identity, never a wider one.
    requester           jsonb       NOT NULL,
    request_id          text,
    -- The batch-expand job (its row says whether expansion is done, and why it failed).
    expand_job_id       uuid        NOT NULL,
    -- Set by POST /v1/batches/{id}/cancel; the expansion enqueues nothing after it.
    cancel_requested_at timestamptz,
    -- When Resource Graph's selection was turned into items (selections only).
    selected_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX batch_requested_by ON batch (requested_by, seq);
CREATE INDEX batch_created ON batch (created_at);

CREATE TABLE batch_item (
    batch_id    uuid        NOT NULL REFERENCES batch (id) ON DELETE CASCADE,
    seq         integer     NOT NULL,   -- the item's place in the request (or in the selection)
    cluster_id  text        NOT NULL,   -- ARM id, canonical form
    registry    text        NOT NULL,   -- ARM id in canonical form, or a bare name, as given
    -- pending: not enqueued yet; enqueued: see job_id; denied: the policy refused it (never
    -- enqueued); failed: the batch's shared read failed for good (never enqueued); cancelled:
    -- the batch was cancelled before the item was enqueued.
    state       text        NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'enqueued', 'denied', 'failed', 'cancelled')),
    job_id      uuid,
    -- true: this batch's enqueue created the job; false: an identical unfinished job was
    -- reused (it belongs to another request, and cancelling the batch leaves it alone).
    created_job boolean,
    -- Selections: the kubelet identity Resource Graph reported for the cluster, with the time it
    -- was read (handed to the item job's initial checkpoint; see ops::resolve::HANDOVER_LIFETIME).
    grantee     jsonb,
    -- denied / failed: {code, message}.
    error       jsonb,
    PRIMARY KEY (batch_id, seq),
    CONSTRAINT job_iff_enqueued CHECK ((state = 'enqueued') = (job_id IS NOT NULL))
);
CREATE INDEX batch_item_job ON batch_item (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX batch_item_pending ON batch_item (batch_id, seq) WHERE state = 'pending';
