-- no-transaction
-- Records were deduplicated on their digest alone: a unique index whose keys are random, so
-- every new record dirtied its own index page and ingestion slowed as the table grew
-- (docs/performance.md). A record's identity within its feed is now (anchor, digest), where the
-- anchor is the smallest id among the indicators it names. A fresh feed's records name fresh
-- indicators, whose ids grow, so their index entries append. Keep in step with
-- ../postgres/0004_intel_record_anchor.sql.
--
-- SQLite cannot drop a column constraint, so the table is rebuilt the way SQLite documents
-- (https://www.sqlite.org/lang_altertable.html, "other kinds of table schema changes"):
-- foreign keys off outside the transaction, so dropping the old table cannot cascade into
-- intel_observations, and checked before commit.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE intel_records_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    anchor        INTEGER NOT NULL,          -- smallest id of the indicators the record names
    hash          TEXT NOT NULL,             -- hex SHA-256 (128 bits) of feed id and raw text
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
    last_fetched  INTEGER NOT NULL,
    UNIQUE (anchor, hash)
);
INSERT INTO intel_records_new (id, anchor, hash, feed_id, source_ref, first_seen, last_seen,
    valid_until, threat_type, family, malware, tags, attack, confidence, reporter, reference,
    status, description, raw, first_fetched, last_fetched)
SELECT r.id,
    COALESCE((SELECT MIN(o.indicator_id) FROM intel_observations o WHERE o.record_id = r.id), 0),
    r.hash, r.feed_id, r.source_ref, r.first_seen, r.last_seen, r.valid_until, r.threat_type,
    r.family, r.malware, r.tags, r.attack, r.confidence, r.reporter, r.reference, r.status,
    r.description, r.raw, r.first_fetched, r.last_fetched
FROM intel_records r;
-- Keep AUTOINCREMENT's high-water mark: ids of deleted records are never handed out again.
DELETE FROM sqlite_sequence WHERE name = 'intel_records_new';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'intel_records_new', seq FROM sqlite_sequence WHERE name = 'intel_records';
DROP TABLE intel_records;
ALTER TABLE intel_records_new RENAME TO intel_records;
CREATE INDEX intel_records_family ON intel_records (family) WHERE family IS NOT NULL;
CREATE INDEX intel_records_feed ON intel_records (feed_id);
COMMIT;
PRAGMA foreign_keys = ON;
