-- Password changes: an administrator's reset (and the first admin's one-time password)
-- sets this flag, and the dashboard then allows nothing but choosing a new password.
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
