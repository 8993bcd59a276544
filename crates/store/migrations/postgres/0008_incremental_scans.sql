-- Incremental scans: the span of the episode each alert reports (its first window's start
-- to its last window's end, UTC milliseconds), and how far each rule version has scanned
-- the store (the newest transaction and registry batches it saw).

CREATE TABLE alert_episodes (
    alert_id      TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES alerts (id) ON DELETE CASCADE,
    episode_from  BIGINT NOT NULL,
    episode_until BIGINT NOT NULL
);

CREATE TABLE scan_marks (
    rule_id        TEXT COLLATE "C" NOT NULL,
    rule_version   TEXT COLLATE "C" NOT NULL,
    tx_batch       BIGINT NOT NULL,
    registry_batch BIGINT NOT NULL,
    scanned_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (rule_id, rule_version)
);

-- The time span of each batch's transactions (NULL for registry batches and loads before
-- this migration): what an incremental scan re-opens.
ALTER TABLE batches ADD COLUMN ts_first BIGINT;
ALTER TABLE batches ADD COLUMN ts_last BIGINT;

CREATE INDEX alerts_rule_version ON alerts (rule_id, rule_version);
