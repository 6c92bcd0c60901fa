-- The legacy data service's schema: customers, an asset catalogue, holdings,
-- and a change log that every holdings write feeds (API or direct SQL).
CREATE TABLE customers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    base_currency TEXT NOT NULL,
    -- grows with every change to the customer's holdings
    version       INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE assets (
    id          INTEGER PRIMARY KEY,
    symbol      TEXT NOT NULL UNIQUE,
    asset_class TEXT NOT NULL CHECK (asset_class IN ('us_equity', 'intl_equity', 'em_equity', 'govt_bonds',
                                                     'corp_bonds', 'real_estate', 'commodities', 'cash')),
    price       REAL NOT NULL CHECK (price >= 0),
    -- date of the price, YYYY-MM-DD
    price_as_of TEXT NOT NULL
);

CREATE TABLE holdings (
    customer_id TEXT NOT NULL REFERENCES customers (id),
    asset_id    INTEGER NOT NULL REFERENCES assets (id),
    quantity    REAL NOT NULL CHECK (quantity >= 0),
    PRIMARY KEY (customer_id, asset_id)
);

CREATE TABLE change_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT NOT NULL
);

CREATE TRIGGER holdings_inserted AFTER INSERT ON holdings BEGIN
    UPDATE customers SET version = version + 1 WHERE id = NEW.customer_id;
    INSERT INTO change_log (customer_id) VALUES (NEW.customer_id);
END;

CREATE TRIGGER holdings_updated AFTER UPDATE ON holdings BEGIN
    UPDATE customers SET version = version + 1 WHERE id = NEW.customer_id;
    INSERT INTO change_log (customer_id) VALUES (NEW.customer_id);
END;

CREATE TRIGGER holdings_deleted AFTER DELETE ON holdings BEGIN
    UPDATE customers SET version = version + 1 WHERE id = OLD.customer_id;
    INSERT INTO change_log (customer_id) VALUES (OLD.customer_id);
END;
