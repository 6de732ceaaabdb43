-- When each agent last reported each policy, in a table of its own, and latest states that
-- are written only when they change. Keep in step with ../sqlite/0019_policy_latest.sql.
--
-- Why: every check of a run rewrote its latest row only to move its run and time, though the
-- status rarely moves between two scans: 359,128 of 363,000 rows in the full fleet benchmark,
-- a third of PostgreSQL's statement time in ingestion (docs/performance.md, "Fleet server").
-- The run and time are the same for every check of a pair, the pair's newest run; a check's
-- row now holds its status and since when, and changes when the status does.
--
-- What a check's latest state means follows: the agent's newest run of the policy says it.
-- A check that run no longer has (a policy version that dropped it) has no latest state; here
-- such rows, older than their pair's newest, leave, and the fleet's counters are counted again
-- from what stays.
CREATE TABLE policy_latest (
    agent_id    TEXT NOT NULL,
    policy_id   TEXT NOT NULL,
    run_id      TEXT NOT NULL,              -- the pair's newest run that had check results
    observed_at BIGINT NOT NULL,            -- when it started
    PRIMARY KEY (agent_id, policy_id)
);

INSERT INTO policy_latest (agent_id, policy_id, run_id, observed_at)
    SELECT DISTINCT ON (agent_id, policy_id) agent_id, policy_id, run_id, observed_at
    FROM latest_results
    ORDER BY agent_id, policy_id, observed_at DESC, run_id DESC;

DELETE FROM latest_results l USING policy_latest n
    WHERE n.agent_id = l.agent_id AND n.policy_id = l.policy_id AND l.observed_at < n.observed_at;

ALTER TABLE latest_results DROP COLUMN run_id;
ALTER TABLE latest_results DROP COLUMN observed_at;

DELETE FROM cohort_checks;
DELETE FROM cohort_policies;
DELETE FROM cohort_failing;
INSERT INTO cohort_checks (cohort_id, policy_id, check_id, status, hosts)
SELECT a.cohort_id, l.policy_id, l.check_id, l.status, COUNT(*)
FROM latest_results l JOIN agents a ON a.id = l.agent_id
WHERE a.cohort_id IS NOT NULL
GROUP BY a.cohort_id, l.policy_id, l.check_id, l.status;
INSERT INTO cohort_policies (cohort_id, policy_id, hosts)
SELECT a.cohort_id, l.policy_id, COUNT(DISTINCT l.agent_id)
FROM latest_results l JOIN agents a ON a.id = l.agent_id
WHERE a.cohort_id IS NOT NULL
GROUP BY a.cohort_id, l.policy_id;
INSERT INTO cohort_failing (cohort_id, policy_id, check_id, since_hour, hosts)
SELECT a.cohort_id, l.policy_id, l.check_id, l.since / 3600, COUNT(*)
FROM latest_results l JOIN agents a ON a.id = l.agent_id
WHERE l.status = 'fail' AND a.cohort_id IS NOT NULL
GROUP BY a.cohort_id, l.policy_id, l.check_id, l.since / 3600;
