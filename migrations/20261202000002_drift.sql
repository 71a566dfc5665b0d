-- Drift: the periodic `verify` job re-checks attached pairs against Azure and marks those that
-- no longer hold as `drifted`, with the reason (README "Drift"). A drifted pair that verifies
-- fine again goes back to `attached`; attach and detach clear the drift when they record.
ALTER TABLE attachment DROP CONSTRAINT attachment_state_check;
ALTER TABLE attachment ADD CONSTRAINT attachment_state_check
    CHECK (state IN ('attached', 'detached', 'drifted'));

ALTER TABLE attachment
    ADD COLUMN drift_reason  text,          -- why it drifted (set exactly while state = 'drifted')
    ADD COLUMN drifted_at    timestamptz,   -- when this drift (with this reason) was first seen
    ADD COLUMN repair_job_id uuid;          -- the attach job --repair-drift enqueued for it, if any

ALTER TABLE attachment ADD CONSTRAINT attachment_drift_reason CHECK (
    (state = 'drifted') = (drift_reason IS NOT NULL AND drifted_at IS NOT NULL)
    AND drift_reason IN ('assignmentGone', 'kubeletIdentityChanged', 'clusterGone', 'registryGone',
                         'registryMoved', 'modeSwitched', 'groupGrantsMoreThanPull')
);
