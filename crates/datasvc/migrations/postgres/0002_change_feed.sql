-- The change feed: every write that alters a customer's portfolio answer (its
-- holdings, its own row, or an asset it holds), by any application writing SQL,
-- bumps the customer's version and lands in the change log in the writer's own
-- transaction, and wakes the data services with a notification.
--
-- Sequence numbers are handed out in start order, not commit order: a reader
-- resuming after 11 could miss a 10 that commits later. So a row's place in the
-- feed, `position`, is given after commit by the data services, one at a time
-- (an advisory lock), to committed rows only, from a sequence of its own: a
-- position once read is never followed by a smaller one.

ALTER TABLE change_log
    ADD COLUMN version    BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN changed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    ADD COLUMN position   BIGINT UNIQUE;

CREATE INDEX change_log_unpositioned ON change_log (seq) WHERE position IS NULL;

CREATE SEQUENCE change_positions AS BIGINT;

UPDATE change_log SET position = seq, version = (SELECT version FROM customers WHERE id = customer_id);
SELECT setval('change_positions', COALESCE(MAX(position), 0) + 1, false) FROM change_log;

CREATE TABLE change_feed (
    only_row       BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    -- names this log: a store created afresh has another
    id             TEXT NOT NULL,
    -- positions at or before this one were pruned
    pruned_through BIGINT NOT NULL DEFAULT 0
);
INSERT INTO change_feed (id) VALUES (gen_random_uuid()::text);

-- The feed as readers see it: positioned rows only.
CREATE VIEW changes AS
    SELECT position, customer_id, version,
           (extract(epoch FROM changed_at) * 1000)::bigint AS changed_at_ms
    FROM change_log
    WHERE position IS NOT NULL;

-- The functions keep the data service's schema as their search path: an
-- application writing SQL with schema-qualified names, and any search path of
-- its own, fires them too.

-- Bumps the versions of `changed` customers and logs them.
CREATE FUNCTION log_customers_changed(changed TEXT[]) RETURNS void LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    WITH bumped AS (
        UPDATE customers SET version = version + 1 WHERE id = ANY (changed) RETURNING id, version
    )
    INSERT INTO change_log (customer_id, version) SELECT id, version FROM bumped;
    PERFORM pg_notify('datasvc_changes', '');
END
$$;

DROP TRIGGER holdings_changed ON holdings;
DROP FUNCTION holdings_changed();

-- A holding moved from one customer to another changes both.
CREATE FUNCTION holdings_changed() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM log_customers_changed(CASE TG_OP
        WHEN 'INSERT' THEN ARRAY[NEW.customer_id]
        WHEN 'DELETE' THEN ARRAY[OLD.customer_id]
        ELSE ARRAY[OLD.customer_id, NEW.customer_id] END);
    RETURN NULL;
END
$$;

CREATE TRIGGER holdings_written AFTER INSERT OR DELETE ON holdings
    FOR EACH ROW EXECUTE FUNCTION holdings_changed();
CREATE TRIGGER holdings_updated AFTER UPDATE ON holdings
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION holdings_changed();

-- TRUNCATE fires no row triggers: every customer's holdings are gone.
CREATE FUNCTION holdings_truncated() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM log_customers_changed(ARRAY(SELECT id FROM customers));
    RETURN NULL;
END
$$;

CREATE TRIGGER holdings_truncated AFTER TRUNCATE ON holdings
    FOR EACH STATEMENT EXECUTE FUNCTION holdings_truncated();

-- A customer's own row: a new customer (a reader may have been told "not
-- found"), a new name, currency or id, or a customer gone. The version bump of
-- the holdings triggers sets `version` only, so it does not fire this.
CREATE FUNCTION customer_changed() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO change_log (customer_id, version) VALUES (NEW.id, NEW.version);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO change_log (customer_id, version) VALUES (OLD.id, OLD.version + 1);
    ELSE
        IF OLD.id <> NEW.id THEN
            INSERT INTO change_log (customer_id, version) VALUES (OLD.id, OLD.version + 1);
        END IF;
        PERFORM log_customers_changed(ARRAY[NEW.id]);
    END IF;
    PERFORM pg_notify('datasvc_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER customer_written AFTER INSERT OR DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION customer_changed();
CREATE TRIGGER customer_updated AFTER UPDATE OF id, name, base_currency ON customers
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.name IS DISTINCT FROM NEW.name
                       OR OLD.base_currency IS DISTINCT FROM NEW.base_currency)
    EXECUTE FUNCTION customer_changed();

-- Every customer is gone: each is logged before the rows go.
CREATE FUNCTION customers_truncating() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO change_log (customer_id, version) SELECT id, version + 1 FROM customers;
    PERFORM pg_notify('datasvc_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER customers_truncating BEFORE TRUNCATE ON customers
    FOR EACH STATEMENT EXECUTE FUNCTION customers_truncating();

-- An asset's price, date, symbol or class is part of every holder's answer.
CREATE FUNCTION asset_changed() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM log_customers_changed(ARRAY(SELECT customer_id FROM holdings WHERE asset_id = OLD.id));
    RETURN NULL;
END
$$;

CREATE TRIGGER asset_updated AFTER UPDATE ON assets
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION asset_changed();

CREATE INDEX holdings_by_asset ON holdings (asset_id);
