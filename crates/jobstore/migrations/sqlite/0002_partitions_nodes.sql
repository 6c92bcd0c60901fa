-- Locality: a job's partition derives from its customer; live worker nodes own
-- partitions. Jobs recorded before partitions existed land in partition 0.
ALTER TABLE jobs ADD COLUMN partition_id INTEGER NOT NULL DEFAULT 0;

CREATE INDEX jobs_partition_queue ON jobs (status, partition_id, available_at);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- Worker nodes, live while their heartbeat is recent.
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
