-- Fair shares across tenants (start-time fair queuing). Each tenant has a
-- virtual clock: a job starts its tenant's next slot, at the later of now and
-- the end of the tenant's last slot, and takes as long as its estimated cost.
-- The queue is read in `fair_at` order, so a tenant's backlog spreads out in
-- virtual time and another tenant's new job lands near the head.
CREATE TABLE tenants (
    owner      TEXT PRIMARY KEY,
    -- the end of the tenant's last slot, in milliseconds
    virtual_ms INTEGER NOT NULL
);

ALTER TABLE jobs ADD COLUMN fair_at INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET fair_at = created_at;

DROP INDEX jobs_queue;
DROP INDEX jobs_partition_queue;
CREATE INDEX jobs_queue ON jobs (status, fair_at, seq);
CREATE INDEX jobs_partition_queue ON jobs (status, partition_id, fair_at, seq);
