-- Operator console sessions. The cookie holds a random session id; only its SHA-256 is stored,
-- so a copy of this table logs nobody in. The operator's token is never stored. Rows live in
-- the database (not in one process's memory) so any replica serves the session and logout
-- ends it everywhere.
CREATE TABLE console_sessions (
    id_hash     BYTEA       NOT NULL,
    operator    TEXT        NOT NULL,
    -- The synchronizer token every state-changing form carries.
    csrf        TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT console_sessions_pkey PRIMARY KEY (id_hash)
);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);
