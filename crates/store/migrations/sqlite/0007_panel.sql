-- The support panel: its users and their sessions. Kept in lockstep with
-- ../postgres/0007_panel.sql: same tables, columns and constraints.
--
-- A username is unique within its client (people log in with client code, username and
-- password). Passwords are stored as argon2id PHC strings; a session is stored as the
-- SHA-256 of its random cookie token, with its CSRF token.

CREATE TABLE panel_users (
    id INTEGER PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id),
    username TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('client_admin', 'client_support')),
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT,
    UNIQUE (client_id, username)
);

CREATE TABLE panel_sessions (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES panel_users (id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL CHECK (expires_at > created_at)
);
CREATE INDEX panel_sessions_user ON panel_sessions (user_id);
CREATE INDEX panel_sessions_expiry ON panel_sessions (expires_at);
