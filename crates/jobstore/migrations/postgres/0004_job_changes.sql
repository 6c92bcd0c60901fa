-- Every change of a job's status or progress is notified, whichever process
-- made it, so that gateways push it to their clients and a worker stops a
-- cancelled job at once. One statement sends one notification per 300 jobs it
-- changed (a payload holds 8000 bytes): a seq each, a cancelled job's prefixed
-- with 'c'. Heartbeats that only renew a lease notify nothing.
CREATE FUNCTION notify_job_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payload TEXT;
BEGIN
    FOR payload IN
        SELECT string_agg(token, ',')
        FROM (SELECT CASE WHEN changed.status = 'cancelled' THEN 'c' ELSE '' END || changed.seq AS token,
                     (row_number() OVER (ORDER BY changed.seq) - 1) / 300 AS chunk
              FROM changed_rows AS changed JOIN previous_rows AS previous USING (seq)
              WHERE changed.status IS DISTINCT FROM previous.status
                 OR changed.progress IS DISTINCT FROM previous.progress) AS tokens
        GROUP BY chunk
    LOOP
        PERFORM pg_notify('projector_job_changes', payload);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_changed AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS previous_rows NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_job_changes();
