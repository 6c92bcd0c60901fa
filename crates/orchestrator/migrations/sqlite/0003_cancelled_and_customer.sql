-- A report can be cancelled, and is listed by customer: the table is rebuilt
-- (SQLite cannot change a CHECK constraint) with the customer as a column of
-- its own, taken from the parameters.
CREATE TABLE reports_new (
    id                TEXT PRIMARY KEY,
    status            TEXT NOT NULL
                      CHECK (status IN ('pending', 'dispatched', 'processing', 'completed', 'failed', 'cancelled')),
    parameters        TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    job_id            TEXT,
    result            TEXT,
    error             TEXT,
    dispatch_attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER NOT NULL,
    owner             TEXT NOT NULL DEFAULT '',
    finished_at       INTEGER,
    customer_id       TEXT NOT NULL DEFAULT ''
);
INSERT INTO reports_new (id, status, parameters, created_at, job_id, result, error,
                         dispatch_attempts, next_attempt_at, owner, finished_at, customer_id)
SELECT id, status, parameters, created_at, job_id, result, error, dispatch_attempts,
       next_attempt_at, owner, finished_at, COALESCE(json_extract(parameters, '$.customer_id'), '')
FROM reports;
DROP TABLE reports;
ALTER TABLE reports_new RENAME TO reports;

CREATE INDEX reports_work ON reports (status, next_attempt_at);
CREATE INDEX reports_owner_newest ON reports (owner, created_at DESC, id);
CREATE INDEX reports_finished ON reports (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX reports_running ON reports (created_at, id) WHERE status IN ('dispatched', 'processing');
