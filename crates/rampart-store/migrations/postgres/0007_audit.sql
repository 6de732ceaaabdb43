-- The tamper-evident audit log. Keep in step with ../sqlite/0009_audit.sql.
-- Entries are leaves of an RFC 9162 Merkle tree: `body` is the exact text hashed, and the
-- other columns are copies for search. Appends take the single `audit_head` row first
-- (UPDATE … RETURNING locks it), which serialises every replica's appends: one index per
-- entry, one history.

CREATE TABLE audit_entries (
    seq     BIGINT PRIMARY KEY,       -- leaf index, from 0
    at_ms   BIGINT NOT NULL,          -- Unix milliseconds
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    outcome TEXT NOT NULL,
    body    TEXT NOT NULL             -- the leaf: canonical JSON of the entry
);
CREATE INDEX audit_entries_actor ON audit_entries (actor, seq);
CREATE INDEX audit_entries_action ON audit_entries (action, seq);
CREATE INDEX audit_entries_target ON audit_entries (target, seq);
CREATE INDEX audit_entries_time ON audit_entries (at_ms);

-- Hashes of the tree's perfect subtrees (level 0: the leaves), written once each.
CREATE TABLE audit_nodes (
    level SMALLINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

-- The tree's size and right edge: what the next append builds on.
CREATE TABLE audit_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    size     BIGINT NOT NULL,
    frontier BYTEA NOT NULL
);
INSERT INTO audit_head (id, size, frontier) VALUES (1, 0, '\x');

-- Signed checkpoints (C2SP signed notes), one per size.
CREATE TABLE audit_checkpoints (
    size       BIGINT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    note       TEXT NOT NULL
);
