-- Durable jobs. Times are milliseconds since the Unix epoch, on the database's
-- clock, so that every node measures leases against the same time.
CREATE TABLE jobs (
    -- byte order: the queue is read in (available_at, id) order, here and in Rust
    id               TEXT COLLATE "C" PRIMARY KEY,
    -- the tenant: a hash of the API key that submitted the job
    owner            TEXT NOT NULL,
    idempotency_key  TEXT,
    -- canonical JSON of the parameters, compared on resubmission
    request          TEXT NOT NULL,
    customer_id      TEXT NOT NULL,
    -- derived from customer_id; the live node that owns it claims the job first
    partition_id     BIGINT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    -- fencing token: grows with every claim; only its holder may finish the job
    lease_token      BIGINT NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    progress         DOUBLE PRECISION NOT NULL DEFAULT 0,
    -- kept as the worker wrote it (jsonb would reorder keys and respell numbers)
    result           TEXT,
    error            TEXT,
    created_at       BIGINT NOT NULL,
    available_at     BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT
) WITH (fillfactor = 80); -- room for the updates of a job's life to stay on its page

CREATE UNIQUE INDEX jobs_owner_idempotency_key ON jobs (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Claims read the queue in order and keep the node's partitions: a node owns a
-- fair share of them, so a few rows are read per job claimed, however long the
-- queue (an index led by the partition made every claim sort the whole queue).
CREATE INDEX jobs_queue ON jobs (available_at, id) WHERE status = 'queued';
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE status = 'processing';
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- Worker nodes, live while their heartbeat is recent.
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

-- The database's clock in milliseconds (the transaction's start), or the time a
-- test passes in.
CREATE FUNCTION clock_ms(fixed BIGINT) RETURNS BIGINT LANGUAGE sql STABLE AS $$
    SELECT COALESCE(fixed, (extract(epoch FROM now()) * 1000)::BIGINT)
$$;
