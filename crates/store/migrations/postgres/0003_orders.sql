-- Outward orders, their lines, shipments and allocations, and the outbox.
-- Kept in lockstep with ../sqlite/0003_orders.sql.
--
-- A line's open quantity is derived: ordered - allocated - shipped - cancelled, each ≥ 0
-- (DESIGN §4 item 4). `allocated` counts units bound and not yet shipped; the stock
-- buckets ALLOCATED:<pool> at a key always equal the sum of live allocations there.

ALTER TABLE channels ADD CONSTRAINT channels_id_client UNIQUE (id, client_id);

CREATE TABLE orders (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id),
    channel_id BIGINT NOT NULL,
    order_code TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('B2C', 'SO', 'ST', 'RTO')),
    fulfilment_type TEXT NOT NULL
        CHECK (fulfilment_type IN ('BLOCK_COMPLETE', 'MULTI_SHIPMENT_PARTIAL', 'SINGLE_SHIPMENT_PARTIAL')),
    retry TEXT NOT NULL CHECK (retry IN ('AUTO', 'NONE')),
    dispatch_by BIGINT,
    priority BIGINT NOT NULL,
    warehouse_id BIGINT,
    destination_warehouse_id BIGINT,
    stock TEXT NOT NULL CHECK (stock IN ('GOOD', 'BAD')),
    ship_name TEXT,
    ship_address TEXT,
    ship_pincode TEXT,
    ship_phone TEXT,
    ship_email TEXT,
    ship_lat DOUBLE PRECISION,
    ship_lon DOUBLE PRECISION,
    status TEXT NOT NULL,
    -- SHA-256 of the order as first accepted: the same body again is the same order.
    body_hash TEXT NOT NULL,
    allocation_trace TEXT,
    attempts BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (client_id, channel_id, order_code),
    UNIQUE (id, client_id),
    FOREIGN KEY (channel_id, client_id) REFERENCES channels (id, client_id),
    FOREIGN KEY (client_id, warehouse_id) REFERENCES client_warehouses (client_id, warehouse_id)
);
CREATE INDEX orders_code ON orders (client_id, order_code);
CREATE INDEX orders_status ON orders (client_id, status);
CREATE INDEX orders_phone ON orders (client_id, ship_phone);

CREATE TABLE order_lines (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id BIGINT NOT NULL,
    order_id BIGINT NOT NULL,
    line_id TEXT NOT NULL,
    sku_id BIGINT NOT NULL,
    ordered BIGINT NOT NULL CHECK (ordered BETWEEN 1 AND 1000000),
    allocated BIGINT NOT NULL CHECK (allocated >= 0),
    shipped BIGINT NOT NULL CHECK (shipped >= 0),
    cancelled BIGINT NOT NULL CHECK (cancelled >= 0),
    price_minor BIGINT CHECK (price_minor >= 0),
    CHECK (allocated + shipped + cancelled <= ordered),
    UNIQUE (order_id, line_id),
    FOREIGN KEY (order_id, client_id) REFERENCES orders (id, client_id),
    FOREIGN KEY (sku_id, client_id) REFERENCES skus (id, client_id)
);
CREATE INDEX order_lines_order ON order_lines (order_id);
CREATE INDEX order_lines_sku ON order_lines (client_id, sku_id);

CREATE TABLE shipments (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id BIGINT NOT NULL,
    order_id BIGINT NOT NULL,
    warehouse_id BIGINT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('RELEASED', 'PICKED', 'PACKED', 'SHIPPED', 'DELIVERED', 'CANCELLED', 'RTO')),
    awb TEXT,
    carrier TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (id, client_id),
    FOREIGN KEY (order_id, client_id) REFERENCES orders (id, client_id),
    FOREIGN KEY (client_id, warehouse_id) REFERENCES client_warehouses (client_id, warehouse_id)
);
CREATE INDEX shipments_order ON shipments (order_id);

-- Units of one order line bound to one bucket (pool, or BAD:<reason>) at the shipment's
-- warehouse. Rows are written once; a shipment's status says whether they are live.
CREATE TABLE allocations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id BIGINT NOT NULL,
    shipment_id BIGINT NOT NULL,
    order_line_id BIGINT NOT NULL,
    warehouse_id BIGINT NOT NULL,
    sku_id BIGINT NOT NULL,
    bucket TEXT NOT NULL,
    qty BIGINT NOT NULL CHECK (qty > 0),
    FOREIGN KEY (shipment_id, client_id) REFERENCES shipments (id, client_id),
    FOREIGN KEY (sku_id, client_id) REFERENCES skus (id, client_id)
);
CREATE INDEX allocations_shipment ON allocations (shipment_id);
CREATE INDEX allocations_key ON allocations (client_id, warehouse_id, sku_id);

-- Events leave through the outbox, written in the transaction of the change they report.
CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id),
    event_type TEXT NOT NULL,
    order_id BIGINT,
    data TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX outbox_client ON outbox (client_id, id);
CREATE INDEX outbox_order ON outbox (order_id);
