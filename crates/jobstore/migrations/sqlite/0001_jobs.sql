-- Durable jobs. Times are milliseconds since the Unix epoch.
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    -- SHA-256 of the API key that submitted the job: its tenant
    owner            TEXT NOT NULL,
    idempotency_key  TEXT,
    -- canonical JSON of the parameters, compared on resubmission
    request          TEXT NOT NULL,
    customer_id      TEXT NOT NULL,
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
    finished_at      INTEGER
);

CREATE UNIQUE INDEX jobs_owner_idempotency_key ON jobs (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_queue ON jobs (status, available_at, created_at);
CREATE INDEX jobs_leases ON jobs (status, lease_expires_at);
