-- Job ids belong to their tenant, as idempotency keys already did: two tenants
-- may use the same id, and neither can learn that the other has. The store
-- itself addresses a job by `seq`, given in submission order, which also
-- breaks ties in the queue's order.
ALTER TABLE jobs ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;
ALTER TABLE jobs DROP CONSTRAINT jobs_pkey;
ALTER TABLE jobs ADD PRIMARY KEY (seq);
ALTER TABLE jobs ADD CONSTRAINT jobs_owner_id UNIQUE (owner, id);
DROP INDEX jobs_queue;
CREATE INDEX jobs_queue ON jobs (available_at, seq) WHERE status = 'queued';
