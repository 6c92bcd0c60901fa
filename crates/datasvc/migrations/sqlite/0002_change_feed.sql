-- The change feed: every write that alters a customer's portfolio answer (its
-- holdings, its own row, or an asset it holds), by any application writing SQL,
-- bumps the customer's version and lands in the change log in the writer's own
-- transaction. SQLite has one writer at a time, so sequence order is commit
-- order and a row's place in the feed is its sequence number.

ALTER TABLE change_log ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE change_log ADD COLUMN changed_at_ms INTEGER NOT NULL DEFAULT 0;

UPDATE change_log SET version = (SELECT version FROM customers WHERE id = customer_id);

CREATE TABLE change_feed (
    only_row       INTEGER PRIMARY KEY CHECK (only_row = 1),
    -- names this log: a store created afresh has another
    id             TEXT NOT NULL,
    -- positions at or before this one were pruned
    pruned_through INTEGER NOT NULL DEFAULT 0
);
INSERT INTO change_feed (only_row, id) VALUES (1, lower(hex(randomblob(16))));

-- The feed as readers see it.
CREATE VIEW changes AS
    SELECT seq AS position, customer_id, version, changed_at_ms FROM change_log;

DROP TRIGGER holdings_inserted;
DROP TRIGGER holdings_updated;
DROP TRIGGER holdings_deleted;

-- Milliseconds since the Unix epoch: CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER).

CREATE TRIGGER holdings_inserted AFTER INSERT ON holdings BEGIN
    UPDATE customers SET version = version + 1 WHERE id = NEW.customer_id;
    INSERT INTO change_log (customer_id, version, changed_at_ms)
        SELECT id, version, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
        FROM customers WHERE id = NEW.customer_id;
END;

-- A holding moved from one customer to another changes both.
CREATE TRIGGER holdings_updated AFTER UPDATE ON holdings
    WHEN OLD.customer_id IS NOT NEW.customer_id OR OLD.asset_id IS NOT NEW.asset_id
         OR OLD.quantity IS NOT NEW.quantity
BEGIN
    UPDATE customers SET version = version + 1 WHERE id IN (OLD.customer_id, NEW.customer_id);
    INSERT INTO change_log (customer_id, version, changed_at_ms)
        SELECT id, version, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
        FROM customers WHERE id IN (OLD.customer_id, NEW.customer_id);
END;

CREATE TRIGGER holdings_deleted AFTER DELETE ON holdings BEGIN
    UPDATE customers SET version = version + 1 WHERE id = OLD.customer_id;
    INSERT INTO change_log (customer_id, version, changed_at_ms)
        SELECT id, version, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
        FROM customers WHERE id = OLD.customer_id;
END;

-- A customer's own row: a new customer (a reader may have been told "not
-- found"), a new name, currency or id, or a customer gone. The version bump of
-- the holdings triggers sets `version` only, so it does not fire these.
CREATE TRIGGER customer_inserted AFTER INSERT ON customers BEGIN
    INSERT INTO change_log (customer_id, version, changed_at_ms)
        VALUES (NEW.id, NEW.version, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER customer_updated AFTER UPDATE OF id, name, base_currency ON customers
    WHEN OLD.id IS NOT NEW.id OR OLD.name IS NOT NEW.name OR OLD.base_currency IS NOT NEW.base_currency
BEGIN
    INSERT INTO change_log (customer_id, version, changed_at_ms)
        SELECT OLD.id, OLD.version + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
        WHERE OLD.id IS NOT NEW.id;
    UPDATE customers SET version = version + 1 WHERE id = NEW.id;
    INSERT INTO change_log (customer_id, version, changed_at_ms)
        SELECT id, version, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
        FROM customers WHERE id = NEW.id;
END;

CREATE TRIGGER customer_deleted AFTER DELETE ON customers BEGIN
    INSERT INTO change_log (customer_id, version, changed_at_ms)
        VALUES (OLD.id, OLD.version + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

-- An asset's price, date, symbol or class is part of every holder's answer.
CREATE TRIGGER asset_updated AFTER UPDATE ON assets
    WHEN OLD.id IS NOT NEW.id OR OLD.symbol IS NOT NEW.symbol OR OLD.asset_class IS NOT NEW.asset_class
         OR OLD.price IS NOT NEW.price OR OLD.price_as_of IS NOT NEW.price_as_of
BEGIN
    UPDATE customers SET version = version + 1
        WHERE id IN (SELECT customer_id FROM holdings WHERE asset_id = OLD.id);
    INSERT INTO change_log (customer_id, version, changed_at_ms)
        SELECT id, version, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
        FROM customers WHERE id IN (SELECT customer_id FROM holdings WHERE asset_id = OLD.id);
END;

CREATE INDEX holdings_by_asset ON holdings (asset_id);
