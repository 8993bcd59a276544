-- Suppressions: a dismissal's decision remembered for a time. One row per dismissal request
-- that asked for it; it becomes active when that request is approved. `rule_id` NULL means
-- every rule on the subject. `expires_at` is UTC milliseconds; an active row past it has
-- expired, with nothing to update.

CREATE TABLE suppressions (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_kind TEXT    NOT NULL,
    subject_id   TEXT COLLATE "C" NOT NULL,
    rule_id      TEXT COLLATE "C",
    reason       TEXT    NOT NULL,
    expires_at   BIGINT  NOT NULL,
    approval_id  BIGINT  NOT NULL UNIQUE REFERENCES approvals (id) ON DELETE CASCADE,
    alert_id     TEXT    NOT NULL,
    requested_by TEXT    NOT NULL,
    requested_at TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'active', 'rejected', 'lifted')),
    decided_by   TEXT,
    decided_at   TEXT
);
-- The queue asks, per alert, whether an active suppression covers its subject.
CREATE INDEX suppressions_subject ON suppressions (subject_id, state, expires_at);
