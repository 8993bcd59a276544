-- Alert counts per (status, severity, rule, assignee), kept by triggers, so the queue's
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
