\echo '================================================================'
\echo ' crm_security: the security layer, inside PostgreSQL'
\echo '================================================================'
CREATE EXTENSION IF NOT EXISTS crm_security;
SELECT crm_security.version();

-- The demo shows refusals: demo_refused() runs a statement that must fail and prints why,
-- without leaving psql in an error state (every step runs with ON_ERROR_STOP); a statement
-- that is accepted instead fails the demo.
\set ECHO none
CREATE FUNCTION public.demo_refused(statement text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    state text;
    message text;
    detail text;
BEGIN
    BEGIN
        EXECUTE statement;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
        RETURN format('refused (%s): %s%s', state, message,
                      CASE WHEN detail <> '' THEN ' - ' || detail ELSE '' END);
    END;
    RAISE EXCEPTION 'the demo expected a refusal, and the statement was accepted';
END
$$;
\set ECHO queries
