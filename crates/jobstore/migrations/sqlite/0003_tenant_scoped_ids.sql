-- Job ids belong to their tenant, as idempotency keys already did: two tenants
-- may use the same id, and neither can learn that the other has. The store
-- itself addresses a job by `seq`, given in submission order and never reused
-- (a fencing token is only as good as the row it names), which also breaks
-- ties in the queue's order. SQLite changes a primary key by rebuilding.
CREATE TABLE jobs_by_seq (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL,
    -- the tenant: a keyed hash of the API key that submitted the job
    owner            TEXT NOT NULL,
    idempotency_key  TEXT,
    -- canonical JSON of the normalized parameters, compared on resubmission
    request          TEXT NOT NULL,
    customer_id      TEXT NOT NULL,
    partition_id     INTEGER NOT NULL DEFAULT 0,
    status           TEXT NOT NULL
                     CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    -- fencing token: grows with every claim; only its holder may finish the job
    lease_token      INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    progress         REAL NOT NULL DEFAULT 0,
    result           TEXT,
    error            TEXT,
    created_at       INTEGER NOT NULL,
    available_at     INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    UNIQUE (owner, id)
);

INSERT INTO jobs_by_seq (id, owner, idempotency_key, request, customer_id, partition_id, status,
                         attempts, max_attempts, lease_token, lease_owner, lease_expires_at,
                         progress, result, error, created_at, available_at, started_at, finished_at)
SELECT id, owner, idempotency_key, request, customer_id, partition_id, status,
       attempts, max_attempts, lease_token, lease_owner, lease_expires_at,
       progress, result, error, created_at, available_at, started_at, finished_at
FROM jobs ORDER BY created_at, id;

DROP TABLE jobs;
ALTER TABLE jobs_by_seq RENAME TO jobs;

CREATE UNIQUE INDEX jobs_owner_idempotency_key ON jobs (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_queue ON jobs (status, available_at, seq);
CREATE INDEX jobs_partition_queue ON jobs (status, partition_id, available_at, seq);
CREATE INDEX jobs_leases ON jobs (status, lease_expires_at);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
