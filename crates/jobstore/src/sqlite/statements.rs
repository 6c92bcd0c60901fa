//! The SQLite statements of the queue's two races: claiming and reaping.

/// Ends the attempts of dead workers: back to the queue while attempts remain,
/// failed with the reason otherwise.
pub(super) const REAP: &str = "UPDATE jobs SET
    status = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
    error = CASE WHEN attempts < max_attempts THEN $1
                 ELSE 'gave up after ' || attempts || ' attempts: ' || $1 END,
    finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE $2 END,
    available_at = $2,
    lease_owner = NULL,
    lease_expires_at = NULL
    WHERE status = 'processing' AND lease_expires_at < $2
    RETURNING seq";

/// Claims in fair order, skipping owners at their running limit (`$8`, NULL
/// for none) and taking no more of an owner's jobs than the limit leaves room for.
pub(super) const CLAIM: &str = "WITH running AS (
         SELECT owner, count(*) AS running FROM jobs
         WHERE status = 'processing' AND $8 IS NOT NULL GROUP BY owner),
     candidates AS (
         SELECT seq, owner, fair_at FROM jobs
         WHERE status = 'queued' AND available_at <= $4
           AND ($5 OR partition_id IN (SELECT value FROM json_each($6)))
           AND owner NOT IN (SELECT owner FROM running WHERE running >= $8)
         ORDER BY fair_at, seq LIMIT $7),
     picked AS (
         SELECT seq FROM (
             SELECT candidates.seq, COALESCE(running.running, 0)
                 + row_number() OVER (PARTITION BY candidates.owner
                                      ORDER BY candidates.fair_at, candidates.seq) AS would_run
             FROM candidates LEFT JOIN running ON running.owner = candidates.owner)
         WHERE $8 IS NULL OR would_run <= $8)
     UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_token = lease_token + 1,
         lease_owner = $1, lease_expires_at = $2, started_at = COALESCE(started_at, $3), progress = 0
     WHERE seq IN (SELECT seq FROM picked)
     RETURNING *";
