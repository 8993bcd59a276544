-- User management: an administrator can disable a user (no sign-in, sessions end) without
-- deleting the name that the audit log refers to.
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;

-- Published rule versions, newest per rule: scans of the store read them.
CREATE INDEX rule_publications_rule ON rule_publications (rule_id, id);
