-- Users, their API tokens and browser sessions. Keep in step with ../postgres/0006_users.sql.
-- The admin tokens of earlier releases become API tokens of a first admin user, so an
-- upgraded install keeps working with the credential it had (for the default 90 days).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'auditor', 'viewer')),
    scope_groups  TEXT NOT NULL DEFAULT '[]',   -- JSON array of agent groups; empty: the whole fleet
    password_hash TEXT,                         -- argon2id PHC string; NULL: no password login
    must_change_password INTEGER NOT NULL DEFAULT 0,
    oidc_subject  TEXT UNIQUE,                  -- issuer and subject of an OIDC login
    created_at    INTEGER NOT NULL,
    password_changed_at INTEGER,
    disabled_at   INTEGER
);

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,         -- hex SHA-256 of the token
    shown         TEXT NOT NULL,                -- its first characters, for lists
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'auditor', 'viewer')),
    scope_groups  TEXT NOT NULL DEFAULT '[]',
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
-- A name is unique among a user's live tokens; a revoked token's name may be used again.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (user_id, name) WHERE revoked_at IS NULL;

CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,             -- hex SHA-256 of the session cookie's value
    user_id       INTEGER NOT NULL REFERENCES users (id),
    csrf_token    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,             -- the idle timeout counts from here
    expires_at    INTEGER NOT NULL,             -- the absolute timeout
    revoked_at    INTEGER,
    client        TEXT NOT NULL,                -- address at login
    user_agent    TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

INSERT INTO users (name, role, must_change_password, created_at)
SELECT 'admin', 'admin', 1, (SELECT MIN(created_at) FROM admin_tokens)
WHERE EXISTS (SELECT 1 FROM admin_tokens);

INSERT INTO api_tokens (user_id, name, token_hash, shown, role, created_at, expires_at)
SELECT u.id, 'legacy-admin-' || t.id, t.token_hash, 'rmp_admin_', 'admin', t.created_at,
       CAST(strftime('%s', 'now') AS INTEGER) + 90 * 86400
FROM admin_tokens t, users u
WHERE u.name = 'admin';

DROP TABLE admin_tokens;
