-- Inventory truth: pools, inward orders and their lines, stock buckets and the ledger.
-- Kept in lockstep with ../postgres/0002_inventory.sql.
--
-- Every unit at a key (client, warehouse, sku) sits in one bucket of `stock`
-- (QC_PENDING, AVAILABLE:<pool>, ALLOCATED:<pool>, BAD:<reason>, LOST, SHIPPED); every
-- change is a `ledger` row, written in the same transaction as the balance it moves.
-- Composite foreign keys make "every row's client is the client of the rows it
-- references" (DESIGN §4 item 6) a constraint, not a hope.

CREATE UNIQUE INDEX skus_id_client ON skus (id, client_id);

CREATE TABLE pools (
    id INTEGER PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    -- The channel codes whose orders draw from this pool, as a JSON list.
    channels TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (client_id, code)
);

CREATE TABLE inward_orders (
    id INTEGER PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id),
    order_code TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('PO', 'ST', 'B2B_RETURN')),
    warehouse_id BIGINT NOT NULL,
    party TEXT,
    status TEXT NOT NULL CHECK (status IN ('OPEN', 'CLOSED')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    closed_at BIGINT,
    UNIQUE (client_id, order_code),
    UNIQUE (id, client_id),
    FOREIGN KEY (client_id, warehouse_id) REFERENCES client_warehouses (client_id, warehouse_id)
);

CREATE TABLE inward_lines (
    id INTEGER PRIMARY KEY,
    client_id BIGINT NOT NULL,
    inward_order_id BIGINT NOT NULL,
    sku_id BIGINT NOT NULL,
    ordered BIGINT NOT NULL CHECK (ordered BETWEEN 1 AND 1000000),
    received BIGINT NOT NULL CHECK (received >= 0),
    qc_pass BIGINT NOT NULL CHECK (qc_pass >= 0),
    qc_fail BIGINT NOT NULL CHECK (qc_fail >= 0),
    lost BIGINT NOT NULL CHECK (lost >= 0),
    CHECK (qc_pass + qc_fail + lost <= received),
    UNIQUE (inward_order_id, sku_id),
    FOREIGN KEY (inward_order_id, client_id) REFERENCES inward_orders (id, client_id),
    FOREIGN KEY (sku_id, client_id) REFERENCES skus (id, client_id)
);

CREATE TABLE stock (
    client_id BIGINT NOT NULL,
    warehouse_id BIGINT NOT NULL,
    sku_id BIGINT NOT NULL,
    bucket TEXT NOT NULL,
    qty BIGINT NOT NULL CHECK (qty >= 0),
    PRIMARY KEY (client_id, warehouse_id, sku_id, bucket),
    FOREIGN KEY (client_id, warehouse_id) REFERENCES client_warehouses (client_id, warehouse_id),
    FOREIGN KEY (sku_id, client_id) REFERENCES skus (id, client_id)
);
CREATE INDEX stock_sku ON stock (client_id, sku_id);

CREATE TABLE ledger (
    id INTEGER PRIMARY KEY,
    client_id BIGINT NOT NULL,
    warehouse_id BIGINT NOT NULL,
    sku_id BIGINT NOT NULL,
    from_bucket TEXT NOT NULL,
    to_bucket TEXT NOT NULL,
    qty BIGINT NOT NULL CHECK (qty > 0),
    kind TEXT NOT NULL,
    -- The document that caused the movement, e.g. `inward:PO-1`, `absolute`, `pool-movement`.
    reference TEXT NOT NULL,
    note TEXT,
    actor TEXT NOT NULL,
    at BIGINT NOT NULL,
    CHECK (from_bucket <> to_bucket),
    FOREIGN KEY (client_id, warehouse_id) REFERENCES client_warehouses (client_id, warehouse_id),
    FOREIGN KEY (sku_id, client_id) REFERENCES skus (id, client_id)
);
CREATE INDEX ledger_key ON ledger (client_id, warehouse_id, sku_id, id);
CREATE INDEX ledger_client ON ledger (client_id, id);
