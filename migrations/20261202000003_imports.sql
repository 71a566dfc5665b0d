-- Imports (`POST /v1/imports`): the images acr-attach put into registries (a probe pulls the
-- newest one when the caller names none), and the source credentials an import holds until it
-- has used them: AES-256-GCM sealed with ACR_ATTACH_SECRETS_KEY, bound to the job id, deleted
-- when the import ends (and by a sweep for jobs that ended otherwise).
CREATE TABLE imported_image (
    registry_key text        NOT NULL,   -- lower-case registry name (names are global)
    image        text        NOT NULL,   -- repository:tag as imported
    job_id       uuid        NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (registry_key, image)
);
CREATE INDEX imported_image_newest ON imported_image (registry_key, imported_at DESC);

CREATE TABLE job_secret (
    job_id     uuid        PRIMARY KEY REFERENCES job (id) ON DELETE CASCADE,
    nonce      bytea       NOT NULL,
    sealed     bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
