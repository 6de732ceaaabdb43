-- Waivers governed on the server: requested with a justification, scope and expiry, approved
-- or denied by someone else holding the auditor or admin role. Keep in step with ../postgres/0011_waivers.sql.
CREATE TABLE waivers (
    id            TEXT PRIMARY KEY,
    check_pattern TEXT NOT NULL,      -- check id or glob, optionally POLICY:GLOB
    scope_kind    TEXT NOT NULL,      -- agent | group | fleet
    scope_name    TEXT NOT NULL,      -- the agent id or group; '' for the fleet
    justification TEXT NOT NULL,
    expires_on    TEXT NOT NULL,      -- last valid day, YYYY-MM-DD (UTC)
    state         TEXT NOT NULL,      -- pending | approved | denied
    requested_by  TEXT NOT NULL,
    requested_at  INTEGER NOT NULL,
    decided_by    TEXT,
    decided_at    INTEGER,
    decision_note TEXT,
    expiry_logged INTEGER NOT NULL DEFAULT 0   -- 1 once its expiry is in the audit log
);
CREATE INDEX waivers_state ON waivers (state, expires_on);
