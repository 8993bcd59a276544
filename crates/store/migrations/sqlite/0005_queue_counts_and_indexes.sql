-- The queue at a million alerts. Part 1: alert counts per (status, severity, rule, assignee), kept by triggers, so the queue's
-- totals and the rules page read a few hundred rows instead of counting every alert.
-- An unassigned alert counts under assignee ''.

CREATE TABLE alert_counts (
    status   TEXT    NOT NULL,
    severity TEXT    NOT NULL,
    rule_id  TEXT    NOT NULL,
    assignee TEXT    NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (status, severity, rule_id, assignee)
) WITHOUT ROWID;

INSERT INTO alert_counts (status, severity, rule_id, assignee, n)
SELECT status, severity, rule_id, COALESCE(assignee, ''), COUNT(*)
FROM alerts GROUP BY status, severity, rule_id, COALESCE(assignee, '');

CREATE TRIGGER alert_counts_insert AFTER INSERT ON alerts
BEGIN
    INSERT INTO alert_counts (status, severity, rule_id, assignee, n)
    VALUES (NEW.status, NEW.severity, NEW.rule_id, COALESCE(NEW.assignee, ''), 1)
    ON CONFLICT (status, severity, rule_id, assignee) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER alert_counts_delete AFTER DELETE ON alerts
BEGIN
    UPDATE alert_counts SET n = n - 1
    WHERE status = OLD.status AND severity = OLD.severity AND rule_id = OLD.rule_id
      AND assignee = COALESCE(OLD.assignee, '');
END;

CREATE TRIGGER alert_counts_update AFTER UPDATE OF status, severity, rule_id, assignee ON alerts
WHEN OLD.status IS NOT NEW.status OR OLD.severity IS NOT NEW.severity
  OR OLD.rule_id IS NOT NEW.rule_id OR OLD.assignee IS NOT NEW.assignee
BEGIN
    UPDATE alert_counts SET n = n - 1
    WHERE status = OLD.status AND severity = OLD.severity AND rule_id = OLD.rule_id
      AND assignee = COALESCE(OLD.assignee, '');
    INSERT INTO alert_counts (status, severity, rule_id, assignee, n)
    VALUES (NEW.status, NEW.severity, NEW.rule_id, COALESCE(NEW.assignee, ''), 1)
    ON CONFLICT (status, severity, rule_id, assignee) DO UPDATE SET n = n + 1;
END;

-- Part 2: indexes for the queue's other filters and sorts. The status index carries the
-- columns the queue filters on, so status + severity/rule/assignee pages are read from it.
DROP INDEX alerts_status_score;
CREATE INDEX alerts_status_queue ON alerts (status, score DESC, id, severity, rule_id, assignee);
CREATE INDEX alerts_status_window ON alerts (status, window_from, id);
CREATE INDEX alerts_rule_window ON alerts (rule_id, window_from, id);
-- A date range: counts per status and pages by score read this index, not the rows.
DROP INDEX alerts_window;
CREATE INDEX alerts_window_score ON alerts (window_from, score, id, status);
CREATE INDEX alerts_subject_score ON alerts (subject_id, score DESC, id);

-- Part 3: the distinct subjects, so a substring search on subjects reads this table and
-- then the subject index instead of every alert.
CREATE TABLE alert_subjects (subject_id TEXT NOT NULL PRIMARY KEY) WITHOUT ROWID;
INSERT OR IGNORE INTO alert_subjects (subject_id) SELECT subject_id FROM alerts;
CREATE TRIGGER alert_subjects_insert AFTER INSERT ON alerts
BEGIN
    INSERT OR IGNORE INTO alert_subjects (subject_id) VALUES (NEW.subject_id);
END;
