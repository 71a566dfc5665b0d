-- What acr-attach knows of each cluster/registry pair: the last attach or detach that succeeded
-- and what Azure said then. Written by the job handlers; read by GET /v1/attachments.
CREATE TABLE attachment (
    cluster_key    text        NOT NULL,   -- lower-cased cluster id
    registry_key   text        NOT NULL,   -- lower-cased registry id
    cluster_id     text        NOT NULL,   -- as ARM spells it
    registry_id    text        NOT NULL,
    state          text        NOT NULL CHECK (state IN ('attached', 'detached')),
    principal_id   uuid,
    role_definition_id text,
    role_name      text,
    assignment_id  text,
    via            text        NOT NULL DEFAULT 'direct',
    verified_at    timestamptz NOT NULL,   -- when ARM last confirmed this state
    last_job_id    uuid        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_key, registry_key)
);
CREATE INDEX attachment_registry ON attachment (registry_key);
