-- Webhook subscribers and their deliveries. Kept in lockstep with ../sqlite/0005_webhooks.sql.

CREATE TABLE webhooks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id),
    code TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    -- Event types delivered, as a JSON list; empty for every type.
    event_types TEXT NOT NULL,
    -- The last outbox event considered for this subscriber.
    last_event_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (client_id, code),
    UNIQUE (id, client_id)
);

CREATE TABLE webhook_deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id BIGINT NOT NULL,
    webhook_id BIGINT NOT NULL,
    event_id BIGINT NOT NULL REFERENCES outbox (id),
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'DEAD')),
    attempts BIGINT NOT NULL CHECK (attempts >= 0),
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    updated_at BIGINT NOT NULL,
    UNIQUE (webhook_id, event_id),
    FOREIGN KEY (webhook_id, client_id) REFERENCES webhooks (id, client_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, status, event_id);
