-- OpenID Connect logins in flight: what the callback needs, by the hash of the state the
-- browser carries. Keep in step with ../sqlite/0010_oidc.sql. Rows live ten minutes.
CREATE TABLE oidc_logins (
    state_hash TEXT PRIMARY KEY,   -- hex SHA-256 of the state parameter
    verifier   TEXT NOT NULL,      -- the PKCE code verifier
    nonce      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
