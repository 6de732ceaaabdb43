-- Operator alert rules (rampart-alerts). Keep in step with ../postgres/0015_alerts.sql.
--
-- A rule's definition is its JSON (condition, severity, quiet period, destinations). Each
-- rule keeps a state per subject (a group's policy, a check, an agent, an agent's indicator):
-- whether its condition holds and what was last told, so that a subject is told once when it
-- starts firing and once when it stops, and at most once per quiet period. One replica at a
-- time evaluates (the turn below is a lease); it reads the event outbox after its cursor and
-- writes the states it judged, the `alert` events to deliver and the new cursor in one
-- transaction, so a replica dying mid-turn leaves nothing half told.
CREATE TABLE alert_rules (
    name       TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,                -- Unix milliseconds
    updated_at BIGINT NOT NULL
);

CREATE TABLE alert_states (
    rule       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    firing     BIGINT NOT NULL,                -- 1: its condition holds
    active     BIGINT NOT NULL,                -- 1: judged again each turn (firing or owed)
    state      TEXT NOT NULL,                  -- JSON (rampart_alerts::SubjectState)
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (rule, subject)
);
CREATE INDEX alert_states_active ON alert_states (active, updated_at);

CREATE TABLE alert_turn (
    id          BIGINT PRIMARY KEY,            -- always 1
    last_seq    BIGINT NOT NULL,               -- the last event seq judged (the cursor)
    holder      TEXT,                          -- the replica whose turn it is
    lease_until BIGINT NOT NULL
);
-- Rules judge what happens from now on, not the outbox's past.
INSERT INTO alert_turn (id, last_seq, holder, lease_until)
    SELECT 1, COALESCE(MAX(seq), 0), NULL, 0 FROM events;
