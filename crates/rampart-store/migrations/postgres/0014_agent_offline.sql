-- When the server last announced an agent offline (an `agent.offline` event), so that each
-- spell of silence is announced once, by one replica. Keep in step with
-- ../sqlite/0016_agent_offline.sql.
ALTER TABLE agents ADD COLUMN offline_announced BIGINT;
