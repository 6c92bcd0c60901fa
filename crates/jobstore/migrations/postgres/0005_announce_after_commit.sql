-- Job changes are announced by the store after each write commits, on a
-- connection of its own: a NOTIFY inside the write's transaction (as the
-- jobs_changed trigger sent) holds PostgreSQL's notification lock through the
-- commit's WAL flush, so every committing worker waited on every other.
DROP TRIGGER jobs_changed ON jobs;
DROP FUNCTION notify_job_changes();
