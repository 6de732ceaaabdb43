-- When each agent last reported each policy, in a table of its own, and latest states that
-- are written only when they change. Keep in step with ../postgres/0019_policy_latest.sql,
-- which says why.
CREATE TABLE policy_latest (
    agent_id    TEXT NOT NULL,
    policy_id   TEXT NOT NULL,
    run_id      TEXT NOT NULL,              -- the pair's newest run that had check results
    observed_at INTEGER NOT NULL,           -- when it started
    PRIMARY KEY (agent_id, policy_id)
) WITHOUT ROWID;

-- SQLite takes a bare column of an aggregate query from the row that gave MAX().
INSERT INTO policy_latest (agent_id, policy_id, run_id, observed_at)
    SELECT agent_id, policy_id, run_id, MAX(observed_at)
    FROM latest_results GROUP BY agent_id, policy_id;

DELETE FROM latest_results WHERE observed_at < (
    SELECT n.observed_at FROM policy_latest n
    WHERE n.agent_id = latest_results.agent_id AND n.policy_id = latest_results.policy_id);

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
