-- Watch lists and allow lists: named lists of account or holder ids kept by hand. Rules
-- read the entries in force (`in_list("name", value)`). An entry is never deleted: it
-- ends when it expires (`expires_at`, UTC milliseconds) or is removed (`removed_at`).

CREATE TABLE lists (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('watch', 'allow')),
    description TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE list_entries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    list_name  TEXT NOT NULL REFERENCES lists (name),
    kind       TEXT NOT NULL CHECK (kind IN ('account', 'holder')),
    value      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    added_by   TEXT NOT NULL,
    added_at   TEXT NOT NULL,
    removed_by TEXT,
    removed_at TEXT
);
-- A list's page, and the entries in force that a scan reads.
CREATE INDEX list_entries_list ON list_entries (list_name, expires_at);
