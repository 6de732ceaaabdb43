-- Every change to an indicator is a new version, stamped from one clock (TAXII 2.1's
-- `date_added`, docs/intel.md "TAXII"). `version` is the stamp of the indicator's current
-- version in microseconds since the epoch; its STIX objects are added at `version + k` for the
-- k-th object, so stamps are four apart and no two objects share one: a client that polls with
-- `added_after` set to the last `date_added` it saw misses nothing and sees nothing twice.
-- `intel_clock` hands stamps out inside the writing transaction, so they grow in commit order.
-- Keep in step with ../sqlite/0006_intel_versions.sql.
ALTER TABLE intel_indicators ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
-- Rows from before: the second they were first ingested, spread by id within it.
UPDATE intel_indicators SET version = first_reported * 1000000 + (id % 250000) * 4;
CREATE INDEX intel_indicators_version ON intel_indicators (version);
CREATE TABLE intel_clock (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    last  BIGINT NOT NULL                   -- the largest stamp handed out
);
INSERT INTO intel_clock (id, last) SELECT 1, COALESCE(MAX(version), 0) FROM intel_indicators;
