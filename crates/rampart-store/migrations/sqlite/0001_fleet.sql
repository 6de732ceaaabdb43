-- Fleet schema, SQLite flavour. Times are Unix seconds (UTC); JSON columns hold text.
-- Keep in step with ../postgres/0001_fleet.sql: the same behavioural tests run on both.

CREATE TABLE ca_material (
    name        TEXT PRIMARY KEY,           -- 'root', 'intermediate', 'token-signer'
    cert_pem    TEXT NOT NULL,
    key_pem     TEXT NOT NULL,              -- encrypted PKCS#8 PEM
    created_at  INTEGER NOT NULL
);

CREATE TABLE admin_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash  TEXT NOT NULL UNIQUE,       -- hex SHA-256 of the bearer token
    label       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE enrolment_tokens (
    jti         TEXT PRIMARY KEY,
    grp         TEXT NOT NULL,
    labels      TEXT NOT NULL,              -- JSON object
    audience    TEXT NOT NULL,
    max_uses    INTEGER NOT NULL,
    uses        INTEGER NOT NULL DEFAULT 0,
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    reenrol_agent_id TEXT                   -- set: the token re-enrols this agent, keeping its identity
);

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    hostname    TEXT NOT NULL,
    os          TEXT NOT NULL,
    arch        TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    labels      TEXT NOT NULL,              -- JSON object
    grp         TEXT NOT NULL,
    cert_serial TEXT NOT NULL,
    cert_not_after INTEGER NOT NULL,
    enrolled_at INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    status      TEXT NOT NULL,              -- 'active' | 'revoked'
    scan_requested_at INTEGER
);
CREATE INDEX agents_grp ON agents (grp);

CREATE TABLE certificates (
    serial      TEXT PRIMARY KEY,           -- lowercase hex
    agent_id    TEXT NOT NULL REFERENCES agents (id),
    fingerprint TEXT NOT NULL,              -- hex SHA-256 of the DER
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    issued_at   INTEGER NOT NULL,
    revoked_at  INTEGER,
    revocation_reason TEXT
);
CREATE INDEX certificates_agent ON certificates (agent_id);
CREATE INDEX certificates_revoked ON certificates (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE policies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE policy_versions (
    policy_id   TEXT NOT NULL REFERENCES policies (id),
    version     INTEGER NOT NULL,
    digest      TEXT NOT NULL,              -- hex SHA-256 of content
    format      TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    content     BLOB NOT NULL,
    check_count INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (policy_id, version)
);
CREATE INDEX policy_versions_digest ON policy_versions (policy_id, digest);

CREATE TABLE assignments (
    policy_id   TEXT NOT NULL REFERENCES policies (id),
    target_kind TEXT NOT NULL,              -- 'group' | 'agent'
    target      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    schedule    TEXT NOT NULL,              -- cron expression
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (policy_id, target_kind, target),
    FOREIGN KEY (policy_id, version) REFERENCES policy_versions (policy_id, version)
);

CREATE TABLE runs (
    id          TEXT PRIMARY KEY,           -- chosen by the agent: retries carry the same id
    agent_id    TEXT NOT NULL REFERENCES agents (id),
    policy_id   TEXT NOT NULL,
    policy_version INTEGER,
    policy_digest TEXT NOT NULL,
    run_trigger TEXT NOT NULL,              -- 'schedule' | 'on_demand' | 'manual'
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    passed      INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    not_applicable INTEGER NOT NULL,
    not_run     INTEGER NOT NULL,
    errors      INTEGER NOT NULL,
    waived      INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    score       DOUBLE PRECISION NOT NULL,
    results_digest TEXT NOT NULL,
    host        TEXT NOT NULL,              -- JSON HostInfo
    warnings    TEXT NOT NULL               -- JSON array
);
CREATE INDEX runs_agent_time ON runs (agent_id, started_at);
CREATE INDEX runs_policy_time ON runs (policy_id, started_at);
CREATE INDEX runs_started ON runs (started_at);

CREATE TABLE check_results (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    check_id    TEXT NOT NULL,
    status      TEXT NOT NULL,
    severity    TEXT NOT NULL,
    title       TEXT NOT NULL,
    outcome     TEXT NOT NULL,              -- JSON CheckOutcome, evidence included
    PRIMARY KEY (run_id, check_id)
);

-- Latest state per agent, policy and check, maintained in the ingestion transaction. `since` is
-- when the check entered its current status: "when did this start failing?" without a scan.
CREATE TABLE latest_results (
    agent_id    TEXT NOT NULL,
    policy_id   TEXT NOT NULL,
    check_id    TEXT NOT NULL,
    status      TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    observed_at INTEGER NOT NULL,
    since       INTEGER NOT NULL,
    PRIMARY KEY (agent_id, policy_id, check_id)
);
CREATE INDEX latest_results_policy ON latest_results (policy_id, status);

-- One row per stored check result, with its run and agent: what a SIEM or a spreadsheet wants.
CREATE VIEW results_flat AS
SELECT r.id AS run_id, r.agent_id, a.hostname, a.grp, r.policy_id, r.policy_version,
       r.started_at, r.finished_at, cr.check_id, cr.title, cr.severity, cr.status
FROM check_results cr
JOIN runs r ON r.id = cr.run_id
JOIN agents a ON a.id = r.agent_id;
