-- A report can be cancelled, and is listed by customer: the customer is a
-- column of its own, taken from the parameters.
ALTER TABLE reports DROP CONSTRAINT reports_status_check;
ALTER TABLE reports ADD CONSTRAINT reports_status_check
    CHECK (status IN ('pending', 'dispatched', 'processing', 'completed', 'failed', 'cancelled'));
ALTER TABLE reports ADD COLUMN customer_id TEXT NOT NULL DEFAULT '';
UPDATE reports SET customer_id = COALESCE(parameters::json ->> 'customer_id', '');
