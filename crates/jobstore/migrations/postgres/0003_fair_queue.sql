-- Fair shares across tenants (start-time fair queuing). Each tenant has a
-- virtual clock: a job starts its tenant's next slot, at the later of now and
-- the end of the tenant's last slot, and takes as long as its estimated cost.
-- The queue is read in `fair_at` order, so a tenant's backlog spreads out in
-- virtual time and another tenant's new job lands near the head.
CREATE TABLE tenants (
    owner      TEXT PRIMARY KEY,
    -- the end of the tenant's last slot, in milliseconds on the database's clock
    virtual_ms BIGINT NOT NULL
);

ALTER TABLE jobs ADD COLUMN fair_at BIGINT;
UPDATE jobs SET fair_at = created_at;
ALTER TABLE jobs ALTER COLUMN fair_at SET NOT NULL;

DROP INDEX jobs_queue;
CREATE INDEX jobs_queue ON jobs (fair_at, seq) WHERE status = 'queued';
