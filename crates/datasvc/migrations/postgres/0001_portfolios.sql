-- The legacy data service's schema: customers, an asset catalogue, holdings,
-- and a change log that every holdings write feeds (API or direct SQL).
CREATE TABLE customers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    base_currency TEXT NOT NULL,
    -- grows with every change to the customer's holdings
    version       BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE assets (
    id          BIGINT PRIMARY KEY,
    symbol      TEXT NOT NULL UNIQUE,
    asset_class TEXT NOT NULL CHECK (asset_class IN ('us_equity', 'intl_equity', 'em_equity', 'govt_bonds',
                                                     'corp_bonds', 'real_estate', 'commodities', 'cash')),
    price       DOUBLE PRECISION NOT NULL CHECK (price >= 0),
    -- date of the price, YYYY-MM-DD
    price_as_of TEXT NOT NULL
);

CREATE TABLE holdings (
    customer_id TEXT NOT NULL REFERENCES customers (id),
    asset_id    BIGINT NOT NULL REFERENCES assets (id),
    quantity    DOUBLE PRECISION NOT NULL CHECK (quantity >= 0),
    PRIMARY KEY (customer_id, asset_id)
);

CREATE TABLE change_log (
    seq         BIGSERIAL PRIMARY KEY,
    customer_id TEXT NOT NULL
);

-- One function for the three holdings triggers: bump the customer's version and
-- log the change, in the writer's own transaction.
CREATE FUNCTION holdings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed TEXT := CASE WHEN TG_OP = 'DELETE' THEN OLD.customer_id ELSE NEW.customer_id END;
BEGIN
    UPDATE customers SET version = version + 1 WHERE id = changed;
    INSERT INTO change_log (customer_id) VALUES (changed);
    RETURN NULL;
END
$$;

CREATE TRIGGER holdings_changed AFTER INSERT OR UPDATE OR DELETE ON holdings
    FOR EACH ROW EXECUTE FUNCTION holdings_changed();
