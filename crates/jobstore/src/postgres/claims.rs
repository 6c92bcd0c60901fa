//! The claim statements on PostgreSQL: the node's own partitions from its
//! cursor, and any job that has waited too long; each with and without a
//! running cap per owner. Spelled as macros so that every variant is one
//! `&'static str`, prepared once.

/// Leases the rows of `picked`. `$1` worker, `$2` lease, `$3` time.
macro_rules! lease_picked {
    () => {
        "UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_token = lease_token + 1,
            lease_owner = $1, lease_expires_at = clock_ms($3) + $2,
            started_at = COALESCE(started_at, clock_ms($3)), progress = 0
        FROM picked WHERE jobs.seq = picked.seq
        RETURNING jobs.*"
    };
}

/// One claim statement: up to `$4` jobs in fair order with `FOR UPDATE SKIP
/// LOCKED`, leased. `$5` is the running cap, NULL here (the capped statement
/// below takes it); `$6` on are the filter's values.
macro_rules! claim_statement {
    ($filter:expr) => {
        concat!(
            "WITH picked AS MATERIALIZED (
                SELECT seq FROM jobs WHERE status = 'queued' AND $5::bigint IS NULL AND ",
            $filter,
            " ORDER BY fair_at, seq LIMIT $4 FOR UPDATE SKIP LOCKED) ",
            lease_picked!()
        )
    };
}

/// The same under a running cap per owner (`$5`): owners at the cap are
/// skipped, and of each owner's candidates only as many as the cap leaves room
/// for are leased; candidates not picked are unlocked when the statement ends.
/// A separate statement, so that claims without a cap pay nothing for it.
macro_rules! capped_claim_statement {
    ($filter:expr) => {
        concat!(
            "WITH running AS MATERIALIZED (
                SELECT owner, count(*) AS running FROM jobs
                WHERE status = 'processing' GROUP BY owner),
            candidates AS MATERIALIZED (
                SELECT seq, owner, fair_at FROM jobs WHERE status = 'queued' AND ",
            $filter,
            " AND owner NOT IN (SELECT owner FROM running WHERE running >= $5)
                ORDER BY fair_at, seq LIMIT $4 FOR UPDATE SKIP LOCKED),
            picked AS MATERIALIZED (
                SELECT seq FROM (
                    SELECT candidates.seq, COALESCE(running.running, 0)
                        + row_number() OVER (PARTITION BY candidates.owner
                                             ORDER BY candidates.fair_at, candidates.seq) AS would_run
                    FROM candidates LEFT JOIN running ON running.owner = candidates.owner) ranked
                WHERE would_run <= $5) ",
            lease_picked!()
        )
    };
}

/// The node's own partitions (`$6`), from the worker's cursor (`$7`, `$8`) on.
macro_rules! owned_filter {
    () => {
        "available_at <= clock_ms($3) AND partition_id = ANY($6) AND (fair_at, seq) > ($7, $8)"
    };
}
/// Any job that has waited `$6` milliseconds.
macro_rules! waiting_filter {
    () => {
        "available_at <= clock_ms($3) - $6"
    };
}

/// The owned and the waiting claim, without and with a running cap.
pub(super) const CLAIMS: [(&str, &str); 2] = [
    (
        claim_statement!(owned_filter!()),
        claim_statement!(waiting_filter!()),
    ),
    (
        capped_claim_statement!(owned_filter!()),
        capped_claim_statement!(waiting_filter!()),
    ),
];
