-- no-transaction
-- SQLite only. Indicators were deduplicated through a unique index on (kind, value): keys of
-- 30-100 bytes in random order, an index larger than the page cache at a few million
-- indicators, and one dirtied page per new indicator written to the WAL at every commit
-- (docs/performance.md). Its place is taken by `key`, 64 bits of SHA-256 over the kind code and
-- the value, in a plain index a third of the size; the single intel writer looks existing
-- indicators up by (key, kind, value) and inserts the rest (crate::intel). PostgreSQL keeps its
-- unique index: several replicas may ingest at once there.
--
-- `key` is computed in Rust (SQLite has no SHA-256): rows from before this migration get it
-- when the store is next opened (Store::open_sqlite), before anything reads it.
--
-- Rebuilt as SQLite documents (https://www.sqlite.org/lang_altertable.html): foreign keys off
-- outside the transaction, so dropping the old table cannot cascade into the tables that
-- reference it (observations, sightings, fleet hits).
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE intel_indicators_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    key            INTEGER,                  -- 64 bits of SHA-256 over kind code and value
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
    last_sighting  INTEGER
);
INSERT INTO intel_indicators_new (id, key, kind, value, first_seen, last_seen, first_reported,
    last_reported, expires_at, base_score, sightings, false_positives, last_sighting)
SELECT id, NULL, kind, value, first_seen, last_seen, first_reported, last_reported, expires_at,
    base_score, sightings, false_positives, last_sighting
FROM intel_indicators;
DELETE FROM sqlite_sequence WHERE name = 'intel_indicators_new';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'intel_indicators_new', seq FROM sqlite_sequence WHERE name = 'intel_indicators';
DROP TABLE intel_indicators;
ALTER TABLE intel_indicators_new RENAME TO intel_indicators;
CREATE INDEX intel_indicators_key ON intel_indicators (key);
CREATE INDEX intel_indicators_expiry ON intel_indicators (expires_at);
COMMIT;
PRAGMA foreign_keys = ON;
