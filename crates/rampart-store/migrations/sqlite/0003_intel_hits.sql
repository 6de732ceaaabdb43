-- Fleet matching: an agent reported an observable (a connection, a resolver entry, a listening
-- service) that matched an indicator. One row per (agent, indicator, observable); repeats move
-- last_seen and the count, so a beacon seen in every scan is one row, not one per scan.
-- Keep in step with ../postgres/0003_intel_hits.sql.
CREATE TABLE intel_hits (
    id              INTEGER PRIMARY KEY,
    agent_id        TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    indicator_id    INTEGER NOT NULL REFERENCES intel_indicators (id) ON DELETE CASCADE,
    observable_kind TEXT NOT NULL,          -- connection, listener, resolver
    observable      TEXT NOT NULL,          -- as the agent reported it
    context         TEXT NOT NULL,          -- where: the socket line, the hosts-file line
    how             TEXT NOT NULL,          -- how it matched (exact, network, parent_domain…)
    first_seen      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    last_run        TEXT NOT NULL,
    count           INTEGER NOT NULL DEFAULT 1,
    UNIQUE (agent_id, indicator_id, observable)
);
CREATE INDEX intel_hits_recent ON intel_hits (last_seen);
CREATE INDEX intel_hits_indicator ON intel_hits (indicator_id);
