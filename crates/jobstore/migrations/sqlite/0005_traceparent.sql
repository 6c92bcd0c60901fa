-- The W3C trace context of a job's submission: its attempts name the trace in
-- their log lines and carry it on to the data service.
ALTER TABLE jobs ADD COLUMN traceparent TEXT;
