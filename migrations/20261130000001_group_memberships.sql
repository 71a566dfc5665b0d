-- Grants through Entra groups (issue 4).
-- For an attachment through a group: whether that attach added the kubelet identity to the
-- group (NULL for direct attachments).
ALTER TABLE attachment ADD COLUMN membership_added boolean;

-- The group memberships acr-attach itself added, so a detach removes only those (never one
-- that existed before, or that someone else made). One row per (group, member); the first
-- adder is kept. `added_by` is the job kind that added it: memberships added while preparing a
-- kubelet identity are the user's set-up and are not removed by a detach.
CREATE TABLE group_membership (
    group_id   uuid        NOT NULL,
    member_id  uuid        NOT NULL,
    added_by   text        NOT NULL CHECK (added_by IN ('attach', 'kubelet-identity')),
    job_id     uuid        NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, member_id)
);
