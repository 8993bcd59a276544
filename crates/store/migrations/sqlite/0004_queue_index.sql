-- The queue filtered by status and severity: counts and pages read one index range.
CREATE INDEX alerts_status_severity_score ON alerts (status, severity, score DESC, id);
