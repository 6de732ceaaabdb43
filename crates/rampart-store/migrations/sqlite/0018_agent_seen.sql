-- When each agent was last heard from, and when its silence was last announced, in a table of
-- their own, so that a heartbeat rewrites a row of two numbers instead of the agent's whole
-- row. Keep in step with ../postgres/0018_agent_seen.sql, which says why.
CREATE TABLE agent_seen (
    agent_id    TEXT PRIMARY KEY REFERENCES agents (id),
    last_seen   INTEGER NOT NULL,
    offline_announced INTEGER               -- the `agent.offline` event of this silence, if sent
) WITHOUT ROWID;

INSERT INTO agent_seen (agent_id, last_seen, offline_announced)
    SELECT id, last_seen, offline_announced FROM agents;

ALTER TABLE agents DROP COLUMN last_seen;
ALTER TABLE agents DROP COLUMN offline_announced;
