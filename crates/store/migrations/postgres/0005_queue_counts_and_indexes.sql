-- The queue at a million alerts. Part 1: alert counts per (status, severity, rule, assignee), kept by statement-level triggers,
-- so the queue's totals and the rules page read a few hundred rows instead of counting
-- every alert. An unassigned alert counts under assignee ''. Each statement applies its
-- changes in one upsert ordered by key, so concurrent case updates lock counter rows in
-- the same order and cannot deadlock on them.

CREATE TABLE alert_counts (
    status   TEXT   NOT NULL,
    severity TEXT   NOT NULL,
    rule_id  TEXT   NOT NULL,
    assignee TEXT   NOT NULL,
    n        BIGINT NOT NULL,
    PRIMARY KEY (status, severity, rule_id, assignee)
);

INSERT INTO alert_counts (status, severity, rule_id, assignee, n)
SELECT status, severity, rule_id, COALESCE(assignee, ''), COUNT(*)
FROM alerts GROUP BY status, severity, rule_id, COALESCE(assignee, '');

CREATE FUNCTION alert_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO alert_counts (status, severity, rule_id, assignee, n)
        SELECT status, severity, rule_id, COALESCE(assignee, ''), COUNT(*)
        FROM new_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (status, severity, rule_id, assignee)
        DO UPDATE SET n = alert_counts.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO alert_counts (status, severity, rule_id, assignee, n)
        SELECT status, severity, rule_id, COALESCE(assignee, ''), -COUNT(*)
        FROM old_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (status, severity, rule_id, assignee)
        DO UPDATE SET n = alert_counts.n + EXCLUDED.n;
    ELSE
        INSERT INTO alert_counts (status, severity, rule_id, assignee, n)
        SELECT status, severity, rule_id, assignee, SUM(d) FROM (
            SELECT status, severity, rule_id, COALESCE(assignee, '') AS assignee, 1 AS d FROM new_rows
            UNION ALL
            SELECT status, severity, rule_id, COALESCE(assignee, ''), -1 FROM old_rows
        ) AS delta
        GROUP BY 1, 2, 3, 4 HAVING SUM(d) <> 0 ORDER BY 1, 2, 3, 4
        ON CONFLICT (status, severity, rule_id, assignee)
        DO UPDATE SET n = alert_counts.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER alert_counts_insert AFTER INSERT ON alerts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION alert_counts_apply();
CREATE TRIGGER alert_counts_delete AFTER DELETE ON alerts
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION alert_counts_apply();
CREATE TRIGGER alert_counts_update AFTER UPDATE ON alerts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION alert_counts_apply();

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
CREATE TABLE alert_subjects (subject_id TEXT NOT NULL PRIMARY KEY);
INSERT INTO alert_subjects (subject_id) SELECT DISTINCT subject_id FROM alerts;

CREATE FUNCTION alert_subjects_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alert_subjects (subject_id)
    SELECT DISTINCT subject_id FROM new_rows ORDER BY 1
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

CREATE TRIGGER alert_subjects_insert AFTER INSERT ON alerts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION alert_subjects_add();
