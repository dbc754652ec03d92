-- Documents: invoice numbers. Kept in lockstep with ../sqlite/0006_documents.sql.
--
-- Each client's invoices are numbered 1, 2, 3 … without gaps: the number is drawn from
-- invoice_sequences in the transaction that packs the shipment, so a rolled-back pack
-- gives its number back, and concurrent packs of one client queue on the sequence row.

CREATE TABLE invoice_sequences (
    client_id BIGINT PRIMARY KEY REFERENCES clients (id),
    last_number BIGINT NOT NULL CHECK (last_number > 0)
);

CREATE TABLE invoices (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id BIGINT NOT NULL,
    shipment_id BIGINT NOT NULL UNIQUE,
    sequence_number BIGINT NOT NULL CHECK (sequence_number > 0),
    -- As printed: the client's prefix at issue time and the zero-padded number.
    number TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    UNIQUE (client_id, sequence_number),
    FOREIGN KEY (shipment_id, client_id) REFERENCES shipments (id, client_id)
);
