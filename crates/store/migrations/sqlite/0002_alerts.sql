-- Alerts with their case fields, normalised evidence, and the rule versions that produced them.
-- `window_from`/`window_until` are UTC milliseconds; `created_at`/`updated_at` RFC 3339 UTC text.

CREATE TABLE rule_versions (
    rule_id    TEXT NOT NULL,
    version    TEXT NOT NULL,
    title      TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (rule_id, version)
);

CREATE TABLE alerts (
    id           TEXT    NOT NULL PRIMARY KEY,
    rule_id      TEXT    NOT NULL,
    rule_version TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    subject_kind TEXT    NOT NULL,
    subject_id   TEXT    NOT NULL,
    window_from  INTEGER NOT NULL,
    window_until INTEGER NOT NULL,
    severity     TEXT    NOT NULL CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    score        INTEGER NOT NULL,
    summary      TEXT    NOT NULL,
    currency     TEXT,
    metrics      TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'new'
        CHECK (status IN ('new', 'in_review', 'escalated', 'reported', 'dismissed', 'closed')),
    assignee     TEXT,
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
);
-- The queue: filters on status, severity, rule and the default sort by score.
CREATE INDEX alerts_score ON alerts (score DESC, id);
CREATE INDEX alerts_status_score ON alerts (status, score DESC, id);
CREATE INDEX alerts_severity_score ON alerts (severity, score DESC, id);
CREATE INDEX alerts_rule_score ON alerts (rule_id, score DESC, id);

-- `ord` keeps each evidence list in the order the alert gave it.
CREATE TABLE alert_evidence (
    alert_id TEXT    NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    kind     TEXT    NOT NULL CHECK (kind IN ('transaction', 'account')),
    ord      INTEGER NOT NULL,
    ref_id   TEXT    NOT NULL,
    PRIMARY KEY (alert_id, kind, ord)
);
-- Which alerts cite a transaction or account.
CREATE INDEX alert_evidence_ref ON alert_evidence (kind, ref_id);

-- The quarantine is listed by batch and line.
CREATE INDEX quarantine_batch_line ON quarantine (batch_id, line);
