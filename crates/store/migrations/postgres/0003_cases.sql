-- Cases: users and sessions of the dashboard, notes, pending approvals, rule publications,
-- and the append-only, hash-chained audit log. Times are RFC 3339 UTC text, as the audit
-- chain hashes them and as both backends share one set of statements; session expiry
-- is UTC milliseconds.

CREATE TABLE users (
    name          TEXT NOT NULL PRIMARY KEY,
    role          TEXT NOT NULL
        CHECK (role IN ('admin', 'supervisor', 'analyst', 'rule_author', 'auditor')),
    password_hash TEXT NOT NULL,
    time_zone     TEXT NOT NULL DEFAULT 'UTC',
    created_at TEXT NOT NULL
);

-- `id` is the SHA-256 of the cookie's token: a stolen table does not log anyone in.
CREATE TABLE sessions (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_name  TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf       TEXT    NOT NULL,
    created_at TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE notes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id   TEXT COLLATE "C" NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX notes_alert ON notes (alert_id, id);

-- Escalation and dismissal wait here for a supervisor other than the requester.
CREATE TABLE approvals (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id     TEXT COLLATE "C" NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    target       TEXT NOT NULL CHECK (target IN ('escalated', 'dismissed')),
    reason       TEXT,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    decided_by   TEXT,
    decided_at   TEXT,
    approved     BOOLEAN
);
-- At most one pending request per alert.
CREATE UNIQUE INDEX approvals_pending ON approvals (alert_id) WHERE decided_at IS NULL;

CREATE TABLE rule_publications (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id      TEXT COLLATE "C" NOT NULL,
    version      TEXT COLLATE "C" NOT NULL,
    published_by TEXT NOT NULL,
    published_at TEXT NOT NULL,
    FOREIGN KEY (rule_id, version) REFERENCES rule_versions (rule_id, version)
);

-- Each entry's `hash` covers its fields and `prev_hash`, the hash of the entry before it.
-- Appends take a transaction-level advisory lock, so the chain stays linear.
CREATE TABLE audit_log (
    seq       BIGINT NOT NULL PRIMARY KEY,
    at        TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    entity    TEXT    NOT NULL,
    before    TEXT,
    after     TEXT,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE INDEX audit_log_entity ON audit_log (entity, seq);

-- The queue's assignee filter and newest-first sort.
CREATE INDEX alerts_assignee_score ON alerts (assignee, score DESC, id);
CREATE INDEX alerts_window ON alerts (window_from DESC, id);
