-- A check's policy text stored once. Keep in step with ../postgres/0020_check_texts.sql, which
-- says why.
CREATE TABLE check_texts (
    id   BLOB PRIMARY KEY,                  -- SHA-256 of text
    text TEXT NOT NULL                      -- JSON: the leading fields of a CheckOutcome
) WITHOUT ROWID;
ALTER TABLE check_results ADD COLUMN text_id BLOB;
