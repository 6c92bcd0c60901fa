-- Reports and their dispatch: a pending row is the outbox entry, written in the
-- same transaction as the report itself. Times are milliseconds since the epoch.
CREATE TABLE reports (
    id                TEXT PRIMARY KEY,
    status            TEXT NOT NULL
                      CHECK (status IN ('pending', 'dispatched', 'processing', 'completed', 'failed')),
    -- the gateway parameters, as JSON
    parameters        TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    job_id            TEXT,
    result            TEXT,
    error             TEXT,
    dispatch_attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL
);

CREATE INDEX reports_work ON reports (status, next_attempt_at);
CREATE INDEX reports_newest ON reports (created_at DESC, id);
