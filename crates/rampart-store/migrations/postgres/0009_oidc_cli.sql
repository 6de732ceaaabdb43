-- OIDC logins for the command line: the CLI's loopback port and its PKCE-style challenge ride
-- with the login in flight; the callback leaves a one-time exchange code the CLI trades for
-- an API token. Keep in step with ../sqlite/0011_oidc_cli.sql.
ALTER TABLE oidc_logins ADD COLUMN cli_port INTEGER;
ALTER TABLE oidc_logins ADD COLUMN cli_challenge TEXT;

CREATE TABLE oidc_exchanges (
    code_hash  TEXT PRIMARY KEY,   -- hex SHA-256 of the one-time code
    user_name  TEXT NOT NULL,
    challenge  TEXT NOT NULL,      -- BASE64URL(SHA-256(the CLI's verifier))
    created_at BIGINT NOT NULL
);
