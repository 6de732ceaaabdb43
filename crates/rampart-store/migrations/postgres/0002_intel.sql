-- Threat intelligence, PostgreSQL flavour. Keep in step with ../sqlite/0002_intel.sql.
-- An indicator is one (kind, value) pair; a record is one feed row, kept verbatim; an
-- observation links the two. Ids grow with time, so a fresh feed's rows append to every
-- table and index except the two dedup keys (kind, value) and record hash. Correlation ("what else did this row name", "same family") is
-- answered from these indexes on demand: there is no pair table to explode.

CREATE TABLE intel_feeds (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    format        TEXT NOT NULL,
    url           TEXT,                      -- NULL: files only (air-gapped sites)
    interval_secs BIGINT NOT NULL,
    reliability   BIGINT NOT NULL,          -- 0-100
    tlp           TEXT NOT NULL,
    terms         TEXT,
    ttl_secs      BIGINT NOT NULL,          -- how long one observation keeps an indicator alive
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    etag          TEXT,
    last_modified TEXT,
    last_attempt  BIGINT,
    last_success  BIGINT,
    last_error    TEXT,
    failures      BIGINT NOT NULL DEFAULT 0, -- consecutive
    last_records  BIGINT,
    last_indicators BIGINT,
    last_problems BIGINT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE intel_indicators (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           BIGINT NOT NULL,
    value          TEXT NOT NULL,
    first_seen     BIGINT NOT NULL,         -- earliest time any source says it saw it
    last_seen      BIGINT NOT NULL,
    first_reported BIGINT NOT NULL,         -- when Rampart first ingested it
    last_reported  BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    base_score     BIGINT NOT NULL,         -- 0-100, before decay and sightings
    sightings      BIGINT NOT NULL DEFAULT 0,
    false_positives BIGINT NOT NULL DEFAULT 0,
    last_sighting  BIGINT,
    UNIQUE (kind, value)
);
CREATE INDEX intel_indicators_expiry ON intel_indicators (expires_at);

CREATE TABLE intel_records (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash          TEXT NOT NULL UNIQUE,      -- hex SHA-256 (128 bits) of feed id and raw text
    feed_id       BIGINT NOT NULL REFERENCES intel_feeds (id) ON DELETE CASCADE,
    source_ref    TEXT,
    first_seen    BIGINT,
    last_seen     BIGINT,
    valid_until   BIGINT,
    threat_type   TEXT,
    family        TEXT,                      -- first malware family, indexed for correlation
    malware       TEXT NOT NULL,             -- JSON array
    tags          TEXT NOT NULL,             -- JSON array
    attack        TEXT NOT NULL,             -- JSON array of technique ids
    confidence    BIGINT,
    reporter      TEXT,
    reference     TEXT,
    status        TEXT,
    description   TEXT,
    raw           TEXT NOT NULL,
    first_fetched BIGINT NOT NULL,
    last_fetched  BIGINT NOT NULL
);
CREATE INDEX intel_records_family ON intel_records (family) WHERE family IS NOT NULL;
CREATE INDEX intel_records_feed ON intel_records (feed_id);

CREATE TABLE intel_observations (
    indicator_id  BIGINT NOT NULL REFERENCES intel_indicators (id) ON DELETE CASCADE,
    record_id     BIGINT NOT NULL REFERENCES intel_records (id) ON DELETE CASCADE,
    PRIMARY KEY (indicator_id, record_id)
);
CREATE INDEX intel_observations_record ON intel_observations (record_id);

-- Known-good values that must never alert (MISP warninglist semantics): one list per row.
CREATE TABLE intel_allowlists (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    match_type    TEXT NOT NULL,             -- cidr | hostname | string | substring | regex
    entries       TEXT NOT NULL,             -- JSON array of strings
    description   TEXT,
    created_at    BIGINT NOT NULL
);

-- Sightings reported by analysts and by the fleet: hits and false positives, kept individually.
CREATE TABLE intel_sightings (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    indicator_id  BIGINT NOT NULL REFERENCES intel_indicators (id) ON DELETE CASCADE,
    sighting_type TEXT NOT NULL,             -- hit | false_positive
    source        TEXT NOT NULL,
    note          TEXT,
    seen_at       BIGINT NOT NULL
);
CREATE INDEX intel_sightings_indicator ON intel_sightings (indicator_id);

-- MITRE ATT&CK names, imported from the bundle the user supplies.
CREATE TABLE intel_attack (
    id            TEXT PRIMARY KEY,          -- T1003, T1003.001, TA0006, G0009, S0090, M1026
    kind          TEXT NOT NULL,             -- technique | tactic | group | software | mitigation | campaign
    name          TEXT NOT NULL,
    tactics       TEXT NOT NULL,             -- JSON array of tactic names (techniques)
    imported_at   BIGINT NOT NULL
);
