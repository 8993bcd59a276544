-- Alerts with their case fields, normalised evidence, and the rule versions that produced them.
-- `window_from`/`window_until` are UTC milliseconds.

CREATE TABLE rule_versions (
    rule_id    TEXT COLLATE "C" NOT NULL,
    version    TEXT COLLATE "C" NOT NULL,
    title      TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (rule_id, version)
);

CREATE TABLE alerts (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    rule_id      TEXT COLLATE "C" NOT NULL,
    rule_version TEXT NOT NULL,
    title        TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_id   TEXT COLLATE "C" NOT NULL,
    window_from  BIGINT NOT NULL,
    window_until BIGINT NOT NULL,
    severity     TEXT NOT NULL CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    score        BIGINT NOT NULL,
    summary      TEXT NOT NULL,
    currency     TEXT,
    metrics      TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'new'
        CHECK (status IN ('new', 'in_review', 'escalated', 'reported', 'dismissed', 'closed')),
    assignee     TEXT,
    version      BIGINT NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
-- The queue: filters on status, severity, rule and the default sort by score.
CREATE INDEX alerts_score ON alerts (score DESC, id);
CREATE INDEX alerts_status_score ON alerts (status, score DESC, id);
CREATE INDEX alerts_severity_score ON alerts (severity, score DESC, id);
CREATE INDEX alerts_rule_score ON alerts (rule_id, score DESC, id);

-- `ord` keeps each evidence list in the order the alert gave it.
CREATE TABLE alert_evidence (
    alert_id TEXT COLLATE "C" NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    kind     TEXT   NOT NULL CHECK (kind IN ('transaction', 'account')),
    ord      BIGINT NOT NULL,
    ref_id   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (alert_id, kind, ord)
);
-- Which alerts cite a transaction or account.
CREATE INDEX alert_evidence_ref ON alert_evidence (kind, ref_id);
