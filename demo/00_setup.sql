\echo '================================================================'
\echo ' crm_security: the security layer, inside PostgreSQL'
\echo '================================================================'
\echo 'The story: Northwind runs a CRM as a service. Its customers (Acme, Globex) are tenants'
\echo 'sharing one database. The application connects as a role without superuser or'
\echo 'BYPASSRLS, and the database itself decides what each request may see and do:'
\echo '  1. tokens       who is asking: JWT verification in C'
\echo '  2. context      a verified token becomes the context of one transaction'
\echo '  3. tenants      tenants and members, a consultant who belongs to two'
\echo '  4. the CRM      tenant isolation, roles and permissions, a spoofing attempt'
\echo '  5. records      record access inside a tenant: owners, managers, sharing'
\echo '  6. API keys     integrations and services without a user'
\echo '  7. webhooks     a signed webhook accepted once, its replay refused; rate limits'
\echo '  8. audit        every change with its verified actor, sealed and verified'
\echo '  9. erasure      personal data in the audit log, erased without breaking the proof'
\echo 'Refusals are part of the story: each one prints "refused (SQLSTATE): message".'
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
