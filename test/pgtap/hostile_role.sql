-- An unprivileged role against the extension's own functions: every function it may call,
-- called with NULLs and with hostile values (megabyte strings, 200,000-element arrays, deeply
-- nested and huge JSON, extreme numbers and intervals, system catalogs as tables), answers
-- with a clear error of an expected class or a result, never an internal error, a crash or a
-- hang (each call runs under a statement timeout); every function it may not call refuses it
-- with 42501; key material, the audit log and the context stay out of its reach; and no
-- message it provokes carries a secret.

BEGIN;
SELECT plan(35);

-- The stage: a key with a recognisable secret, an audited and isolated table the role may
-- use, and the role itself.
CREATE ROLE crm_hostile NOLOGIN;
GRANT CREATE ON SCHEMA public TO crm_hostile;
CREATE TABLE public.hostile_deals (id int PRIMARY KEY, tenant_id text NOT NULL, v text);
INSERT INTO public.hostile_deals VALUES (1, 't1', 'one'), (2, 't2', 'two');
SELECT crm_security.enable_tenant_isolation('public.hostile_deals');
SELECT crm_security.enable_audit('public.hostile_deals');
GRANT SELECT, INSERT, UPDATE, DELETE ON public.hostile_deals TO crm_hostile;
SELECT crm_security.add_jwt_key('hostile-k1', 'HS256', 'HOSTILE-CANARY-0123456789abcdef0123456789');

-- What every call provoked, one row per call.
CREATE TEMP TABLE sweep (fn text, variant text, sqlstate text, msg text, ms double precision);
GRANT ALL ON sweep TO crm_hostile;

-- Hostile values by argument type; NULL where a type has none here.
CREATE FUNCTION pg_temp.hostile_value(t regtype, variant text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN variant = 'null' THEN pg_catalog.format('NULL::%s', t)
        WHEN t = 'text'::regtype AND variant = 'huge'
            THEN $q$pg_catalog.repeat('eyJhbGciOiJIUzI1NiJ9.', 50000)$q$
        WHEN t = 'text'::regtype
            THEN $q$pg_catalog.repeat(E'\u0001%s%n\\''" .:*', 1000)$q$
        WHEN t = 'text[]'::regtype AND variant = 'huge'
            THEN $q$pg_catalog.array_fill('crm:*:manage'::text, ARRAY[200000])$q$
        WHEN t = 'text[]'::regtype
            THEN $q$ARRAY[NULL, '', '*', ':', pg_catalog.repeat('a:', 5000), E'x\ny']::text[]$q$
        WHEN t = 'jsonb'::regtype AND variant = 'huge'
            THEN $q$(SELECT pg_catalog.jsonb_build_object('keys', pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                        'kty', 'oct', 'kid', 'k' || g, 'k', pg_catalog.repeat('QUFB', 64))))
                     FROM pg_catalog.generate_series(1, 5000) g)$q$
        WHEN t = 'jsonb'::regtype
            THEN $q$(pg_catalog.repeat('{"a":[', 2000) || '1' || pg_catalog.repeat(']}', 2000))::jsonb$q$
        WHEN t = 'bytea'::regtype AND variant = 'huge'
            THEN $q$pg_catalog.decode(pg_catalog.repeat('ab', 1048576), 'hex')$q$
        WHEN t = 'bytea'::regtype THEN $q$'\x'::bytea$q$
        WHEN t = 'integer'::regtype AND variant = 'huge' THEN '2147483647'
        WHEN t = 'integer'::regtype THEN '-1'
        WHEN t = 'bigint'::regtype AND variant = 'huge' THEN '9223372036854775807'
        WHEN t = 'bigint'::regtype THEN '(-9223372036854775807 - 1)'
        WHEN t = 'interval'::regtype AND variant = 'huge' THEN $q$'178000000 years'::interval$q$
        WHEN t = 'interval'::regtype THEN $q$'-178000000 years'::interval$q$
        WHEN t = 'timestamp with time zone'::regtype AND variant = 'huge' THEN $q$'infinity'::timestamptz$q$
        WHEN t = 'timestamp with time zone'::regtype THEN $q$'-infinity'::timestamptz$q$
        WHEN t = 'regclass'::regtype AND variant = 'huge' THEN $q$'pg_catalog.pg_authid'::regclass$q$
        WHEN t = 'regclass'::regtype THEN $q$'crm_security.audit_log'::regclass$q$
        WHEN t = 'name'::regtype THEN $q$pg_catalog.repeat('x', 63)::name$q$
        WHEN t = 'boolean'::regtype THEN 'true'
        WHEN t = 'uuid'::regtype THEN $q$'00000000-0000-0000-0000-000000000000'::uuid$q$
        WHEN t = 'inet'::regtype THEN $q$'::ffff:10.0.0.1'::inet$q$
        WHEN t = 'cidr'::regtype THEN $q$'::/0'::cidr$q$
        WHEN t = 'cidr[]'::regtype THEN $q$ARRAY['0.0.0.0/0', '::/0']::cidr[]$q$
        ELSE pg_catalog.format('NULL::%s', t)
    END
$$;

-- Call every function of the extension (but trigger and event trigger functions) with each variant, each call in
-- its own subtransaction, and record what it raised and how long it took.  The sweep as a
-- whole runs under a statement timeout, so that a hang ends as a failure.
CREATE FUNCTION pg_temp.sweep(variants text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    f record;
    v text;
    call text;
    st text;
    m text;
    d text;
    h text;
    c text;
    t0 timestamptz;
BEGIN
    FOR f IN
        SELECT p.oid, p.proname, p.proargtypes::regtype[] AS args
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'crm_security'::regnamespace
          AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
          AND p.prokind = 'f'
        ORDER BY p.oid
    LOOP
        FOREACH v IN ARRAY variants LOOP
            SELECT pg_catalog.format('SELECT pg_catalog.count(*) FROM %s.%I(%s)', 'crm_security', f.proname,
                                     coalesce(pg_catalog.string_agg(pg_temp.hostile_value(a, v), ', ' ORDER BY n), ''))
            INTO call
            FROM pg_catalog.unnest(f.args) WITH ORDINALITY AS u(a, n);
            st := '00000'; m := NULL; d := NULL; h := NULL; c := NULL;
            t0 := pg_catalog.clock_timestamp();
            BEGIN
                EXECUTE call;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
                                        h = PG_EXCEPTION_HINT, c = PG_EXCEPTION_CONTEXT;
            END;
            INSERT INTO sweep VALUES (f.oid::regprocedure::text, v, st,
                                      pg_catalog.concat_ws(' | ', m, d, h, c),
                                      1000 * extract(epoch FROM pg_catalog.clock_timestamp() - t0));
        END LOOP;
    END LOOP;
END
$$;


-- 1. Reaching secrets and protected state directly.
SET LOCAL ROLE crm_hostile;
SELECT throws_ok('SELECT * FROM crm_security.jwt_keys', '42501', NULL,
                 'the key store is not readable');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('evil', 'HS256', pg_catalog.repeat('e', 40))$$, '42501', NULL,
                 'add_jwt_key is refused');
SELECT throws_ok($$SELECT crm_security.import_jwks('{"keys":[]}')$$, '42501', NULL,
                 'import_jwks is refused');
SELECT throws_ok($$SELECT crm_security.disable_jwt_key('hostile-k1')$$, '42501', NULL,
                 'disable_jwt_key is refused');
SELECT throws_ok('SELECT * FROM crm_security.audit_log', '42501', NULL,
                 'audit_log is not readable');
SELECT throws_ok($$INSERT INTO crm_security.audit_log (operation) VALUES ('INSERT')$$, '42501', NULL,
                 'audit_log takes no direct insert');
SELECT throws_ok('DELETE FROM crm_security.audit_log', '42501', NULL, 'audit_log takes no delete');
SELECT throws_ok('TRUNCATE crm_security.audit_log', '42501', NULL, 'audit_log takes no truncate');
SELECT throws_ok('SELECT crm_security.purge_audit_log(interval ''0 seconds'')', '42501', NULL,
                 'purge_audit_log is refused');
SELECT throws_ok('SELECT * FROM crm_security.role_grants', '42501', NULL, 'role grants are not readable');
SELECT throws_ok($$SELECT crm_security.grant_role('eve', 't1', 'admin')$$, '42501', NULL,
                 'grant_role is refused');
SELECT throws_ok($$SELECT crm_security.disable_tenant_isolation('public.hostile_deals')$$, '42501', NULL,
                 'disable_tenant_isolation on a table the role does not own is refused');
SELECT throws_ok($$SELECT crm_security.disable_audit('public.hostile_deals')$$, '42501', NULL,
                 'disable_audit on a table the role does not own is refused');
SELECT throws_ok($$SELECT crm_security.enable_audit('pg_catalog.pg_authid')$$, '42501', NULL,
                 'enable_audit on a system catalog is refused');

-- 2. Forging the context.
CREATE FUNCTION pg_temp.tenant_or_refusal() RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    RETURN coalesce(crm_security.tenant_id(), '(none)');
EXCEPTION WHEN invalid_authorization_specification THEN
    RETURN '(refused)';
END $$;
RESET ROLE;
SAVEPOINT forge;
SET LOCAL ROLE crm_hostile;
DO $$ BEGIN
    PERFORM pg_catalog.set_config('crm_security.token', 'eyJhbGciOiJub25lIn0.eyJ0ZW5hbnRfaWQiOiJ0MSJ9.', true);
EXCEPTION WHEN OTHERS THEN NULL;
END $$;
SELECT isnt(pg_temp.tenant_or_refusal(), 't1', 'an unsigned token set with set_config gives no tenant');
DO $$ BEGIN
    PERFORM pg_catalog.set_config('crm_security.token',
        'eyJhbGciOiJIUzI1NiIsImtpZCI6Imhvc3RpbGUtazEifQ.eyJ0ZW5hbnRfaWQiOiJ0MSJ9.c2lnbmF0dXJl', true);
EXCEPTION WHEN OTHERS THEN NULL;
END $$;
SELECT isnt(pg_temp.tenant_or_refusal(), 't1', 'a token with a made-up signature gives no tenant');
SELECT pg_catalog.set_config('request.jwt.claims', '{"sub":"eve","tenant_id":"t1","permissions":["*"]}', true) IS NOT NULL AS planted \gset
SELECT is(crm_security.claims(), NULL, 'request.jwt.claims set by the role gives no claims');
SELECT is(crm_security.can('crm:deals:delete'), false, 'request.jwt.claims set by the role grants nothing');
SELECT is((SELECT pg_catalog.count(*) FROM public.hostile_deals), 0::bigint,
          'without a verified context the isolated table shows no rows');
SELECT throws_ok($$INSERT INTO public.hostile_deals VALUES (3, 't2', 'planted')$$, '42501', NULL,
                 'without a verified context no row can be written');
RESET ROLE;
ROLLBACK TO SAVEPOINT forge;

-- 3. Every function the role may call, with NULLs and hostile values.
SET LOCAL statement_timeout = '300s';
SET LOCAL ROLE crm_hostile;
SELECT pg_temp.sweep(ARRAY['null', 'odd', 'huge']);
RESET ROLE;

SELECT is((SELECT pg_catalog.count(DISTINCT fn) FROM sweep) >= 50, true,
          'the sweep reached every function of the extension');
SELECT is_empty($$SELECT fn, variant, sqlstate FROM sweep WHERE sqlstate LIKE 'XX%'$$,
                'no call raised an internal error');
SELECT is_empty($$SELECT fn, variant, ms FROM sweep WHERE ms > 10000$$,
                'no call took more than 10 s (a bound on work, not a benchmark)');
SELECT is_empty($$SELECT fn, variant, sqlstate, pg_catalog.left(msg, 200) FROM sweep
                  WHERE sqlstate !~ '^(00000|22...|28000|42501|42P01|42703|42704|42809|42883|0A000|54...|55000|23...|P0001)$'$$,
                'every refusal is of an expected class');
SELECT is_empty($$SELECT s.fn, s.variant, s.sqlstate FROM sweep s
                  JOIN pg_catalog.pg_proc p ON p.oid = s.fn::regprocedure
                  WHERE NOT pg_catalog.has_function_privilege('crm_hostile', p.oid, 'EXECUTE')
                    AND s.sqlstate <> '42501'
                    -- a strict function called with NULLs is folded to NULL before it is checked
                    AND NOT (s.variant = 'null' AND p.proisstrict)$$,
                'every function the role may not execute refuses it with 42501');
SELECT is_empty($$SELECT fn, variant FROM sweep WHERE msg LIKE '%HOSTILE-CANARY%'$$,
                'no message, detail, hint or context carries the key store''s secret');
SELECT is_empty($$SELECT fn, variant FROM sweep WHERE msg LIKE '%eyJhbGciOiJIUzI1NiJ9.eyJhbGciOiJIUzI1NiJ9%'$$,
                'no message echoes a presented value at length (a token or key passed in the wrong place)');

-- 4. The same values from a superuser: administrative functions refuse them cleanly too.
TRUNCATE sweep;
SELECT pg_temp.sweep(ARRAY['null', 'odd', 'huge']);
SELECT is_empty($$SELECT fn, variant, sqlstate FROM sweep WHERE sqlstate LIKE 'XX%'$$,
                'as superuser: no call raised an internal error');
SELECT is_empty($$SELECT fn, variant, ms FROM sweep WHERE ms > 10000$$,
                'as superuser: no call took more than 10 s');
SELECT is_empty($$SELECT fn, variant, sqlstate, pg_catalog.left(msg, 200) FROM sweep
                  WHERE sqlstate !~ '^(00000|22...|28000|42501|42P01|42703|42704|42809|42883|0A000|54...|55000|23...|P0001)$'$$,
                'as superuser: every refusal is of an expected class');
SELECT is_empty($$SELECT fn, variant FROM sweep WHERE msg LIKE '%HOSTILE-CANARY%'$$,
                'as superuser: no message carries the key store''s secret');

-- 5. The server survived and the audit chain still verifies.
SELECT is((SELECT ok FROM crm_security.verify_audit_log()), true, 'the audit chain verifies after the sweep');
SELECT is((SELECT pg_catalog.count(*) FROM public.hostile_deals), 2::bigint, 'the isolated table kept its rows');
SELECT is((SELECT pg_catalog.count(*) FROM crm_security.jwt_keys WHERE kid = 'hostile-k1' AND enabled), 1::bigint,
          'the key store kept its key');
SELECT pass('the session survived every call');

SELECT * FROM finish();
ROLLBACK;
