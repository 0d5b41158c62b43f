-- Accessors of an RFC example table rfc(name, val) that the including file fills:
-- r(name) as text, rj(name) as jsonb, and b64u(bytes), base64url without padding.
-- Included with \ir after the table is created.
CREATE FUNCTION pg_temp.r(n text) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT val FROM rfc WHERE name = n $$;
CREATE FUNCTION pg_temp.rj(n text) RETURNS jsonb
LANGUAGE sql STABLE AS $$ SELECT val::jsonb FROM rfc WHERE name = n $$;
CREATE FUNCTION pg_temp.b64u(b bytea) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.translate(pg_catalog.encode(b, 'base64'), E'+/=\n', '-_')
$$;
