-- An account's transactions in and out: read by the stream workers, which evaluate the
-- accounts that new transactions touch, and by the dashboard's account view.
CREATE INDEX transactions_from_account ON transactions (from_account, ts);
CREATE INDEX transactions_to_account ON transactions (to_account, ts);
