-- Queue assignment: a case worker may be away until a time (UTC milliseconds; NULL when
-- available). Automatic assignment passes over them until then.
ALTER TABLE users ADD COLUMN unavailable_until BIGINT;
