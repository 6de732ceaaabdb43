-- Attestations: the server's signing keys (separate from the CA and the audit log key, each
-- private key encrypted with the operator's passphrase) and one signed attestation per stored
-- run. Keep in step with ../postgres/0010_attest.sql.
ALTER TABLE runs ADD COLUMN generator TEXT NOT NULL DEFAULT '';
-- The certificate the run was posted with: what its attestation is bound to (cnf) and may not
-- outlive, kept so an attestation can be issued from the stored run after a crash.
ALTER TABLE runs ADD COLUMN cert_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN cert_not_after INTEGER NOT NULL DEFAULT 0;

CREATE TABLE attestation_keys (
    kid          TEXT PRIMARY KEY,     -- RFC 7638 thumbprint of the public key
    alg          TEXT NOT NULL,        -- EdDSA | ES256 | RS256
    state        TEXT NOT NULL,        -- next | current | retired
    public_jwk   TEXT NOT NULL,
    private_key  TEXT NOT NULL,        -- encrypted PKCS#8 PEM
    created_at   INTEGER NOT NULL,
    activated_at INTEGER,
    retired_at   INTEGER
);
-- One current key and one next key at most: replicas rotating at once cannot both win.
CREATE UNIQUE INDEX attestation_keys_live ON attestation_keys (state) WHERE state <> 'retired';

CREATE TABLE attestations (
    jti         TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL UNIQUE,  -- one per run; kept when retention removes the run
    agent_id    TEXT NOT NULL,
    policy_id   TEXT NOT NULL,
    kid         TEXT NOT NULL REFERENCES attestation_keys (kid),
    status      TEXT NOT NULL,
    score       REAL NOT NULL,
    started_at  INTEGER NOT NULL,         -- the run's start: a later start makes this one stale
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    log_index   INTEGER NOT NULL,
    jws         TEXT NOT NULL
);
CREATE INDEX attestations_agent ON attestations (agent_id, policy_id, started_at);
