-- The fleet's tallies, kept where ingestion already writes so that the dashboard's fleet-wide
-- views sum a few thousand counters instead of scanning a million latest results.
-- Keep in step with ../postgres/0012_fleet_tallies.sql.
--
-- A cohort is one combination of the agent attributes a fleet view filters on (group, OS,
-- labels as canonical JSON, revoked or not); every agent belongs to exactly one. The counters
-- are kept per cohort, so a view narrowed by group, OS or label picks its cohorts from this small
-- table and sums their counters. The store's code (src/tallies.rs) moves the counters in the
-- same transaction as the latest results and the agents they describe.
CREATE TABLE cohorts (
    id      INTEGER PRIMARY KEY,
    grp     TEXT NOT NULL,
    os      TEXT NOT NULL,
    labels  TEXT NOT NULL,                  -- JSON object, keys sorted
    revoked INTEGER NOT NULL,               -- 1 for revoked agents: kept, but out of every view
    UNIQUE (grp, os, labels, revoked)
);

ALTER TABLE agents ADD COLUMN cohort_id INTEGER REFERENCES cohorts (id);
CREATE INDEX agents_cohort ON agents (cohort_id);

-- Agents of the cohort whose latest result of the check has the status.
CREATE TABLE cohort_checks (
    cohort_id INTEGER NOT NULL,
    policy_id TEXT NOT NULL,
    check_id  TEXT NOT NULL,
    status    TEXT NOT NULL,
    hosts     INTEGER NOT NULL,
    PRIMARY KEY (cohort_id, policy_id, check_id, status)
);

-- Agents of the cohort with a latest result of the policy.
CREATE TABLE cohort_policies (
    cohort_id INTEGER NOT NULL,
    policy_id TEXT NOT NULL,
    hosts     INTEGER NOT NULL,
    PRIMARY KEY (cohort_id, policy_id)
);

-- Agents of the cohort failing the check now, by the hour (Unix seconds / 3600) they started
-- failing: "newly failing since yesterday" reads the last day's hours only.
CREATE TABLE cohort_failing (
    cohort_id  INTEGER NOT NULL,
    policy_id  TEXT NOT NULL,
    check_id   TEXT NOT NULL,
    since_hour INTEGER NOT NULL,
    hosts      INTEGER NOT NULL,
    PRIMARY KEY (cohort_id, policy_id, check_id, since_hour)
);
CREATE INDEX cohort_failing_hour ON cohort_failing (since_hour);

-- One check across the fleet reads its rows without scanning the policy's.
CREATE INDEX latest_results_check ON latest_results (policy_id, check_id, status);

-- The counters of what is already stored.
INSERT INTO cohorts (grp, os, labels, revoked)
SELECT DISTINCT grp, os, labels, CASE WHEN status = 'revoked' THEN 1 ELSE 0 END FROM agents;
UPDATE agents SET cohort_id = (
    SELECT c.id FROM cohorts c
    WHERE c.grp = agents.grp AND c.os = agents.os AND c.labels = agents.labels
      AND c.revoked = CASE WHEN agents.status = 'revoked' THEN 1 ELSE 0 END);
INSERT INTO cohort_checks (cohort_id, policy_id, check_id, status, hosts)
SELECT a.cohort_id, l.policy_id, l.check_id, l.status, COUNT(*)
FROM latest_results l JOIN agents a ON a.id = l.agent_id
GROUP BY a.cohort_id, l.policy_id, l.check_id, l.status;
INSERT INTO cohort_policies (cohort_id, policy_id, hosts)
SELECT a.cohort_id, l.policy_id, COUNT(DISTINCT l.agent_id)
FROM latest_results l JOIN agents a ON a.id = l.agent_id
GROUP BY a.cohort_id, l.policy_id;
INSERT INTO cohort_failing (cohort_id, policy_id, check_id, since_hour, hosts)
SELECT a.cohort_id, l.policy_id, l.check_id, l.since / 3600, COUNT(*)
FROM latest_results l JOIN agents a ON a.id = l.agent_id
WHERE l.status = 'fail'
GROUP BY a.cohort_id, l.policy_id, l.check_id, l.since / 3600;
