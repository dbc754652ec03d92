-- The spine: clients and their keys, warehouses, and the masters.
-- Times are microseconds since the Unix epoch (UTC); money is in minor units; ids are 64-bit.
-- Kept in lockstep with ../postgres/0001_spine.sql: same tables, columns and constraints.

CREATE TABLE clients (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id),
    role TEXT NOT NULL CHECK (role IN ('client_admin', 'client_support', 'integration')),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_client ON api_keys (client_id);

CREATE TABLE warehouses (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('WAREHOUSE', 'STORE')),
    address TEXT,
    pincode TEXT NOT NULL,
    lat REAL,
    lon REAL,
    priority BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE client_warehouses (
    client_id BIGINT NOT NULL REFERENCES clients (id),
    warehouse_id BIGINT NOT NULL REFERENCES warehouses (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, warehouse_id)
);

CREATE TABLE channels (
    id INTEGER PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('MARKETPLACE', 'WEBSITE', 'B2B')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (client_id, code)
);

CREATE TABLE skus (
    id INTEGER PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    mrp_minor BIGINT NOT NULL CHECK (mrp_minor >= 0),
    price_minor BIGINT CHECK (price_minor >= 0),
    tax_rate_bp BIGINT CHECK (tax_rate_bp BETWEEN 0 AND 10000),
    hsn TEXT,
    weight_grams BIGINT CHECK (weight_grams >= 0),
    attributes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (client_id, code)
);

CREATE TABLE partners (
    id INTEGER PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id),
    kind TEXT NOT NULL CHECK (kind IN ('SUPPLIER', 'CUSTOMER')),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    address TEXT,
    pincode TEXT,
    gstin TEXT,
    phone TEXT,
    email TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (client_id, kind, code)
);
