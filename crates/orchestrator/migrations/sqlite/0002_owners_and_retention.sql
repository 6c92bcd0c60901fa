-- Reports belong to the tenant whose key asked for them (a keyed hash of the
-- key, as jobs). Earlier releases submitted every report under the first key:
-- the orchestrator gives the reports without an owner to that key's tenant.
ALTER TABLE reports ADD COLUMN owner TEXT NOT NULL DEFAULT '';
-- When the report reached its end, for retention.
ALTER TABLE reports ADD COLUMN finished_at INTEGER;
UPDATE reports SET finished_at = created_at WHERE status IN ('completed', 'failed');

CREATE INDEX reports_owner_newest ON reports (owner, created_at DESC, id);
CREATE INDEX reports_finished ON reports (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX reports_running ON reports (created_at, id) WHERE status IN ('dispatched', 'processing');
