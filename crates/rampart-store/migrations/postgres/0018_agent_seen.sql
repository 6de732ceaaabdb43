-- When each agent was last heard from, and when its silence was last announced, in a table of
-- their own. Keep in step with ../sqlite/0018_agent_seen.sql.
--
-- Why: a heartbeat rewrote the agent's whole `agents` row (a new row version of every column)
-- for one number, so ten thousand agents beating every two minutes left `agents` with more
-- dead row versions than live ones between vacuums, and every result batch, which locks its
-- agents' rows first (`tallies.rs`), walked them; a flush and a batch also wanted the same
-- rows, so flushes skipped the ones a batch held and retried them. Here a beat rewrites a row
-- of two numbers that nothing else locks, and `agents` changes only when an agent does
-- (docs/performance.md, "Fleet server").
CREATE TABLE agent_seen (
    agent_id    TEXT PRIMARY KEY REFERENCES agents (id),
    last_seen   BIGINT NOT NULL,
    offline_announced BIGINT                -- the `agent.offline` event of this silence, if sent
);

INSERT INTO agent_seen (agent_id, last_seen, offline_announced)
    SELECT id, last_seen, offline_announced FROM agents;

ALTER TABLE agents DROP COLUMN last_seen;
ALTER TABLE agents DROP COLUMN offline_announced;
