-- Roles inferred from behaviour (clearwatch_model::roles) for accounts the registry gives
-- no role, as the last store scan that read the whole store found them. Replaced whole by
-- each such scan; the dashboard shows them marked as inferred.

CREATE TABLE inferred_roles (
    account_id TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('acquirer', 'merchant'))
);
