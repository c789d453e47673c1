-- A console session is bound to the operator token that opened it, so changing or removing
-- that token ends the session. `token_binding` is SHA-256 over the session id and the token's
-- SHA-256: only a request carrying the session's cookie can check it against the tokens in
-- force, and a copy of this table reveals neither. Sessions opened before are bound to no
-- token, so they end here (their operators log in again).
DELETE FROM console_sessions;
ALTER TABLE console_sessions ADD COLUMN token_binding BYTEA NOT NULL;
