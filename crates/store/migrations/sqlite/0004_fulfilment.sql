-- Fulfilment: remarks on orders. Kept in lockstep with ../postgres/0004_fulfilment.sql.

CREATE TABLE remarks (
    id INTEGER PRIMARY KEY,
    client_id BIGINT NOT NULL,
    order_id BIGINT NOT NULL,
    text TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    FOREIGN KEY (order_id, client_id) REFERENCES orders (id, client_id)
);
CREATE INDEX remarks_order ON remarks (order_id);
