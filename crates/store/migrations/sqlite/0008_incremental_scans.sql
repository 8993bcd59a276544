-- Incremental scans: the span of the episode each alert reports (its first window's start
-- to its last window's end, UTC milliseconds), and how far each rule version has scanned
-- the store (the newest transaction and registry batches it saw).

CREATE TABLE alert_episodes (
    alert_id      TEXT    NOT NULL PRIMARY KEY REFERENCES alerts (id) ON DELETE CASCADE,
    episode_from  INTEGER NOT NULL,
    episode_until INTEGER NOT NULL
);

CREATE TABLE scan_marks (
    rule_id        TEXT    NOT NULL,
    rule_version   TEXT    NOT NULL,
    tx_batch       INTEGER NOT NULL,
    registry_batch INTEGER NOT NULL,
    scanned_at     TEXT    NOT NULL,
    PRIMARY KEY (rule_id, rule_version)
);

-- The time span of each batch's transactions (NULL for registry batches and loads before
-- this migration): what an incremental scan re-opens.
ALTER TABLE batches ADD COLUMN ts_first INTEGER;
ALTER TABLE batches ADD COLUMN ts_last INTEGER;

CREATE INDEX alerts_rule_version ON alerts (rule_id, rule_version);
