-- A record's identity within its feed is now (anchor, digest), where the anchor is the
-- smallest id among the indicators it names: a fresh feed's records name fresh indicators,
-- whose ids grow, so their index entries append instead of landing on random pages
-- (docs/performance.md). Keep in step with ../sqlite/0004_intel_record_anchor.sql.
ALTER TABLE intel_records ADD COLUMN anchor BIGINT;
UPDATE intel_records r
SET anchor = COALESCE((SELECT MIN(o.indicator_id) FROM intel_observations o WHERE o.record_id = r.id), 0);
ALTER TABLE intel_records ALTER COLUMN anchor SET NOT NULL;
ALTER TABLE intel_records DROP CONSTRAINT intel_records_hash_key;
ALTER TABLE intel_records ADD CONSTRAINT intel_records_anchor_hash UNIQUE (anchor, hash);
