-- The PostgreSQL store drops the foreign-key check of transactions.batch_id here (a
-- row-by-row check that took two thirds of a bulk insert). SQLite keeps it: it costs
-- about a tenth of an insert there, and removing it would mean rebuilding the table.
-- This migration keeps both stores at the same schema version.

SELECT 1;
