-- Threat intelligence, SQLite flavour. Keep in step with ../postgres/0002_intel.sql.
-- An indicator is one (kind, value) pair; a record is one feed row, kept verbatim; an
-- observation links the two. Ids grow with time, so a fresh feed's rows append to every
-- table and index except the two dedup keys (kind, value) and record hash. Correlation ("what else did this row name", "same family") is
-- answered from these indexes on demand: there is no pair table to explode.

CREATE TABLE intel_feeds (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    format        TEXT NOT NULL,
    url           TEXT,                      -- NULL: files only (air-gapped sites)
    interval_secs INTEGER NOT NULL,
    reliability   INTEGER NOT NULL,          -- 0-100
    tlp           TEXT NOT NULL,
    terms         TEXT,
    ttl_secs      INTEGER NOT NULL,          -- how long one observation keeps an indicator alive
    enabled       INTEGER NOT NULL DEFAULT 1,
    etag          TEXT,
    last_modified TEXT,
    last_attempt  INTEGER,
    last_success  INTEGER,
    last_error    TEXT,
    failures      INTEGER NOT NULL DEFAULT 0, -- consecutive
    last_records  INTEGER,
    last_indicators INTEGER,
    last_problems INTEGER,
    created_at    INTEGER NOT NULL
);

CREATE TABLE intel_indicators (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           INTEGER NOT NULL,
    value          TEXT NOT NULL,
    first_seen     INTEGER NOT NULL,         -- earliest time any source says it saw it
    last_seen      INTEGER NOT NULL,
    first_reported INTEGER NOT NULL,         -- when Rampart first ingested it
    last_reported  INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    base_score     INTEGER NOT NULL,         -- 0-100, before decay and sightings
    sightings      INTEGER NOT NULL DEFAULT 0,
    false_positives INTEGER NOT NULL DEFAULT 0,
    last_sighting  INTEGER,
    UNIQUE (kind, value)
);
CREATE INDEX intel_indicators_expiry ON intel_indicators (expires_at);

CREATE TABLE intel_records (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    hash          TEXT NOT NULL UNIQUE,      -- hex SHA-256 (128 bits) of feed id and raw text
    feed_id       INTEGER NOT NULL REFERENCES intel_feeds (id) ON DELETE CASCADE,
    source_ref    TEXT,
    first_seen    INTEGER,
    last_seen     INTEGER,
    valid_until   INTEGER,
    threat_type   TEXT,
    family        TEXT,                      -- first malware family, indexed for correlation
    malware       TEXT NOT NULL,             -- JSON array
    tags          TEXT NOT NULL,             -- JSON array
    attack        TEXT NOT NULL,             -- JSON array of technique ids
    confidence    INTEGER,
    reporter      TEXT,
    reference     TEXT,
    status        TEXT,
    description   TEXT,
    raw           TEXT NOT NULL,
    first_fetched INTEGER NOT NULL,
    last_fetched  INTEGER NOT NULL
);
CREATE INDEX intel_records_family ON intel_records (family) WHERE family IS NOT NULL;
CREATE INDEX intel_records_feed ON intel_records (feed_id);

CREATE TABLE intel_observations (
    indicator_id  INTEGER NOT NULL REFERENCES intel_indicators (id) ON DELETE CASCADE,
    record_id     INTEGER NOT NULL REFERENCES intel_records (id) ON DELETE CASCADE,
    PRIMARY KEY (indicator_id, record_id)
) WITHOUT ROWID;
CREATE INDEX intel_observations_record ON intel_observations (record_id);

-- Known-good values that must never alert (MISP warninglist semantics): one list per row.
CREATE TABLE intel_allowlists (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    match_type    TEXT NOT NULL,             -- cidr | hostname | string | substring | regex
    entries       TEXT NOT NULL,             -- JSON array of strings
    description   TEXT,
    created_at    INTEGER NOT NULL
);

-- Sightings reported by analysts and by the fleet: hits and false positives, kept individually.
CREATE TABLE intel_sightings (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    indicator_id  INTEGER NOT NULL REFERENCES intel_indicators (id) ON DELETE CASCADE,
    sighting_type TEXT NOT NULL,             -- hit | false_positive
    source        TEXT NOT NULL,
    note          TEXT,
    seen_at       INTEGER NOT NULL
);
CREATE INDEX intel_sightings_indicator ON intel_sightings (indicator_id);

-- MITRE ATT&CK names, imported from the bundle the user supplies.
CREATE TABLE intel_attack (
    id            TEXT PRIMARY KEY,          -- T1003, T1003.001, TA0006, G0009, S0090, M1026
    kind          TEXT NOT NULL,             -- technique | tactic | group | software | mitigation | campaign
    name          TEXT NOT NULL,
    tactics       TEXT NOT NULL,             -- JSON array of tactic names (techniques)
    imported_at   INTEGER NOT NULL
);
