-- When the server last announced an agent offline (an `agent.offline` event), so that each
-- spell of silence is announced once. Keep in step with ../postgres/0014_agent_offline.sql.
ALTER TABLE agents ADD COLUMN offline_announced INTEGER;
