-- Every change to an indicator is a new version, stamped from one clock (TAXII 2.1's
-- `date_added`, docs/intel.md "TAXII"). `version` is the stamp of the indicator's current
-- version in microseconds since the epoch; its STIX objects are added at `version + k` for the
-- k-th object, so stamps are four apart and no two objects share one: a client that polls with
-- `added_after` set to the last `date_added` it saw misses nothing and sees nothing twice.
-- `intel_clock` hands stamps out inside the writing transaction, so they grow in commit order.
-- Keep in step with ../sqlite/0006_intel_versions_and_decay.sql.
ALTER TABLE intel_indicators ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
-- Rows from before: the second they were first ingested, spread by id within it.
UPDATE intel_indicators SET version = first_reported * 1000000 + (id % 250000) * 4;
CREATE INDEX intel_indicators_version ON intel_indicators (version);
CREATE TABLE intel_clock (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    last  BIGINT NOT NULL                   -- the largest stamp handed out
);
INSERT INTO intel_clock (id, last) SELECT 1, COALESCE(MAX(version), 0) FROM intel_indicators;

-- The indicator's threat type (its latest record's that has one), kept on the indicator so
-- scoring can choose a decay model per threat type without reading records (crate::intel).
ALTER TABLE intel_indicators ADD COLUMN threat_type TEXT;
UPDATE intel_indicators SET threat_type = (
    SELECT r.threat_type FROM intel_observations o JOIN intel_records r ON r.id = o.record_id
    WHERE o.indicator_id = intel_indicators.id AND r.threat_type IS NOT NULL
    ORDER BY r.last_fetched DESC, r.id DESC LIMIT 1);

-- Operators' decay models (rampart intel decay set): they replace the built-in model of a
-- scope, `kind:KIND`, `threat:TYPE` or `default`. A NULL lifetime never decays.
CREATE TABLE intel_decay_models (
    scope         TEXT PRIMARY KEY,
    lifetime_days DOUBLE PRECISION,
    speed         DOUBLE PRECISION NOT NULL
);

-- A counter every change to the rules (allowlists, decay models) moves, in the same
-- transaction: servers compare it before each lookup, match, fleet hit and export, so a
-- change made by the CLI or another replica applies before the next one (docs/intel.md).
CREATE TABLE intel_rules (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL
);
INSERT INTO intel_rules (id, generation) VALUES (1, 0);
