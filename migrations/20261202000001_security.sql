-- Caller identity, job ownership and the audit trail (docs/security.md).

-- API keys (`acr-attach keys ...`): only a SHA-256 digest of each key is stored.
CREATE TABLE api_key (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    digest       bytea       NOT NULL UNIQUE CHECK (octet_length(digest) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
-- One live key per name (the policy refers to names); revoked keys stay for the record.
CREATE UNIQUE INDEX api_key_live_name ON api_key (name) WHERE revoked_at IS NULL;

-- Who asked for each job: jobs belong to their requesters. Several callers can share one job
-- (an identical request while it is queued or running gets the same job).
CREATE TABLE job_requester (
    job_id       uuid        NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    requested_by text        NOT NULL CHECK (char_length(requested_by) <= 200),
    requested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, requested_by)
);
CREATE INDEX job_requester_by ON job_requester (requested_by, job_id);

-- The audit trail: every mutating request, allowed or denied. Append-only, enforced by the
-- database for every role (the triggers refuse UPDATE, DELETE and TRUNCATE, whoever asks);
-- archiving old records is a DBA's deliberate act (ALTER TABLE ... DISABLE TRIGGER).
CREATE TABLE audit_record (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    request_id  text,
    caller      text        NOT NULL,   -- entra:<oid> | key:<name> | anonymous
    caller_info jsonb       NOT NULL,   -- kind, app id, tenant, roles
    action      text        NOT NULL,
    method      text        NOT NULL,
    path        text        NOT NULL,
    resources   jsonb       NOT NULL,   -- cluster, registry, group, identity, job
    decision    text        NOT NULL CHECK (decision IN ('allowed', 'denied')),
    rule        text,
    reason      text        NOT NULL,
    status      smallint    NOT NULL,
    job_id      uuid
);
CREATE INDEX audit_record_caller ON audit_record (caller, id);
CREATE INDEX audit_record_job ON audit_record (job_id) WHERE job_id IS NOT NULL;

CREATE FUNCTION audit_record_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on audit_record refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_record_append_only BEFORE UPDATE OR DELETE ON audit_record
    FOR EACH ROW EXECUTE FUNCTION audit_record_is_append_only();
CREATE TRIGGER audit_record_no_truncate BEFORE TRUNCATE ON audit_record
    FOR EACH STATEMENT EXECUTE FUNCTION audit_record_is_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_record FROM PUBLIC;
