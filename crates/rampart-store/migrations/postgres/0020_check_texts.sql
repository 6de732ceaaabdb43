-- A check's policy text stored once (src/texts.rs says how a result is split and joined).
--
-- Every result of a check used to carry, in `check_results.outcome`, what the policy says of the
-- check (title, description, rationale, remediation, references, compliance, rules) beside
-- what the host gave (status, reason, evidence, waiver). The policy's words are the same in
-- every agent's result of a policy version and are most of the bytes written per result, so
-- they are now stored once per distinct text, keyed by its SHA-256, and a result keeps the
-- host's part with the key. Results stored before keep their whole text and a NULL key; they
-- are read as before.
CREATE TABLE check_texts (
    id   BYTEA PRIMARY KEY,                 -- SHA-256 of text
    text TEXT NOT NULL                      -- JSON: the leading fields of a CheckOutcome
);
ALTER TABLE check_results ADD COLUMN text_id BYTEA;
