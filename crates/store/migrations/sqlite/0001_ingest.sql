-- Loaded input: batches (one per file load), transactions, accounts, merchants, quarantine.
-- Times are UTC: `ts` in milliseconds since the Unix epoch, `loaded_at` as RFC 3339 text.

CREATE TABLE batches (
    batch_id         INTEGER PRIMARY KEY,
    kind             TEXT    NOT NULL CHECK (kind IN ('transactions', 'accounts', 'merchants')),
    source           TEXT    NOT NULL,
    profile          TEXT    NOT NULL,
    sha256           TEXT,
    loaded_at        TEXT    NOT NULL,
    rows_read        INTEGER NOT NULL DEFAULT 0,
    rows_loaded      INTEGER NOT NULL DEFAULT 0,
    rows_quarantined INTEGER NOT NULL DEFAULT 0,
    rows_duplicate   INTEGER NOT NULL DEFAULT 0,
    unknown_types    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE transactions (
    tx_id        TEXT    NOT NULL PRIMARY KEY,
    ts           INTEGER NOT NULL,
    from_account TEXT    NOT NULL,
    to_account   TEXT    NOT NULL,
    amount       INTEGER NOT NULL CHECK (amount >= 0),
    currency     TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    merchant_id  TEXT,
    channel      TEXT,
    region       TEXT,
    memo         TEXT,
    row_hash     INTEGER NOT NULL,
    batch_id     INTEGER NOT NULL REFERENCES batches (batch_id),
    line         INTEGER NOT NULL
);

CREATE TABLE accounts (
    account_id  TEXT    NOT NULL PRIMARY KEY,
    holder_id   TEXT,
    holder_name TEXT,
    kind        TEXT,
    role        TEXT    NOT NULL DEFAULT 'unknown',
    licensed    INTEGER NOT NULL DEFAULT 0,
    institution TEXT,
    region      TEXT,
    row_hash    INTEGER NOT NULL,
    batch_id    INTEGER NOT NULL REFERENCES batches (batch_id),
    line        INTEGER NOT NULL
);

CREATE TABLE merchants (
    merchant_id           TEXT    NOT NULL PRIMARY KEY,
    legal_name            TEXT,
    holder_id             TEXT,
    settlement_account    TEXT,
    acquirer              TEXT,
    mcc                   TEXT,
    settlement_cycle_days INTEGER,
    row_hash              INTEGER NOT NULL,
    batch_id              INTEGER NOT NULL REFERENCES batches (batch_id),
    line                  INTEGER NOT NULL
);

CREATE TABLE quarantine (
    id       INTEGER PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES batches (batch_id),
    source   TEXT    NOT NULL,
    line     INTEGER NOT NULL,
    field    TEXT,
    reason   TEXT    NOT NULL,
    raw      TEXT    NOT NULL
);
CREATE INDEX quarantine_batch ON quarantine (batch_id);
