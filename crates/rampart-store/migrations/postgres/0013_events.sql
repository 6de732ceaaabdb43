-- The event stream's durable outbox. Keep in step with ../sqlite/0015_events.sql.
--
-- Every event (rampart-events: one typed, versioned JSON document) is written in the same
-- transaction as what it reports — a run's ingestion, an audit entry, an IOC hit — with one
-- delivery row per enabled destination. Dispatchers on every replica claim due delivery rows
-- with FOR UPDATE SKIP LOCKED and a lease, send them, and delete them once the destination
-- acknowledged; a failure pushes the row's next attempt back, and after the destination's
-- attempt limit the row stays as a dead letter until an operator retries or drops it. An
-- event leaves once per destination however many replicas run, and again only when a
-- replica died between sending it and settling it (at least once; `id` deduplicates).
CREATE TABLE events (
    seq       BIGSERIAL PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    at        BIGINT NOT NULL,                 -- when it happened, Unix milliseconds
    kind      TEXT NOT NULL,
    severity  TEXT NOT NULL,
    agent_id  TEXT,
    grp       TEXT,                            -- the agent's group: role-limited readers' filter
    body      TEXT NOT NULL                    -- the event's JSON, `seq` 0 (set when read)
);
CREATE INDEX events_at ON events (at);

CREATE TABLE event_destinations (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,                 -- webhook, syslog, splunk_hec, kafka
    config      TEXT NOT NULL,                 -- JSON; secrets sealed by the server
    filter      TEXT NOT NULL,                 -- JSON: kinds, lowest severity, groups
    enabled     BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    -- Health, as the dispatchers of every replica saw it.
    delivered   BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0,
    last_success BIGINT,
    last_failure BIGINT,
    last_error  TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE event_deliveries (
    destination TEXT NOT NULL REFERENCES event_destinations (name) ON DELETE CASCADE,
    seq         BIGINT NOT NULL REFERENCES events (seq),
    attempts    BIGINT NOT NULL DEFAULT 0,
    next_at     BIGINT NOT NULL,               -- Unix milliseconds
    lease_until BIGINT NOT NULL DEFAULT 0,     -- claimed by a dispatcher until then
    last_error  TEXT,
    dead        BIGINT NOT NULL DEFAULT 0,     -- 1: out of attempts, kept for the operator
    PRIMARY KEY (destination, seq)
);
CREATE INDEX event_deliveries_due ON event_deliveries (destination, dead, next_at, seq);
CREATE INDEX event_deliveries_seq ON event_deliveries (seq);
