-- Privilege escalation through planted operators and functions.  An ordinary role with
-- CREATE on public plants operators for the type pairs the extension's SQL compares, and
-- functions and aggregates named like the ones it calls, in public and in pg_temp; each
-- records that it ran (a real attacker would ALTER ROLE ... SUPERUSER instead).  A
-- superuser then calls every administrative function under search paths that put those
-- objects first: nothing planted may run.
SET client_min_messages = warning;
BEGIN;
SELECT plan(8);

CREATE ROLE regress_hp_attacker;
GRANT CREATE ON SCHEMA public TO regress_hp_attacker;
-- The temporary schema exists before the attacker plants objects in it.
CREATE TEMP TABLE hp_results (search_path text, call text, outcome text);

SET LOCAL ROLE regress_hp_attacker;
CREATE TABLE public.hp_hits (what text);
GRANT INSERT, SELECT ON public.hp_hits TO PUBLIC;
CREATE FUNCTION public.hp_hit(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF pg_catalog.current_setting('hp.armed', true) OPERATOR(pg_catalog.=) 'on' THEN
        INSERT INTO public.hp_hits VALUES (what);
    END IF;
END $$;

-- Operators: (name, left type, right type, result type).
DO $plant$
DECLARE
    o record;
    n int := 0;
    sch text;
BEGIN
    FOR o IN SELECT * FROM (VALUES
        ('=', 'oid', 'regprocedure', 'boolean'), ('=', 'oid', 'oid', 'boolean'),
        ('<>', 'oid', 'oid', 'boolean'), ('=', 'oid', 'regclass', 'boolean'),
        ('=', 'name', 'name', 'boolean'), ('=', 'name', 'text', 'boolean'),
        ('=', 'text', 'name', 'boolean'),
        ('=', 'text', 'text', 'boolean'), ('<>', 'text', 'text', 'boolean'),
        ('~', 'text', 'text', 'boolean'), ('~~', 'text', 'text', 'boolean'),
        ('||', 'text', 'text', 'text'),
        ('=', 'bigint', 'bigint', 'boolean'), ('<', 'bigint', 'bigint', 'boolean'),
        ('>', 'bigint', 'bigint', 'boolean'), ('<=', 'bigint', 'bigint', 'boolean'),
        ('>=', 'bigint', 'bigint', 'boolean'), ('<>', 'bigint', 'bigint', 'boolean'),
        ('=', 'bigint', 'integer', 'boolean'), ('>', 'bigint', 'integer', 'boolean'),
        ('=', 'integer', 'integer', 'boolean'), ('>', 'integer', 'integer', 'boolean'),
        ('<', 'integer', 'integer', 'boolean'),
        ('<', 'timestamptz', 'timestamptz', 'boolean'), ('>=', 'timestamptz', 'timestamptz', 'boolean'),
        ('>', 'timestamptz', 'timestamptz', 'boolean'), ('<=', 'timestamptz', 'timestamptz', 'boolean'),
        ('=', 'bytea', 'bytea', 'boolean'), ('=', 'boolean', 'boolean', 'boolean'),
        ('->>', 'jsonb', 'text', 'text'), ('->', 'jsonb', 'text', 'jsonb'),
        ('?', 'jsonb', 'text', 'boolean'), ('||', 'jsonb', 'jsonb', 'jsonb'),
        ('=', 'jsonb', 'jsonb', 'boolean'), ('@>', 'text[]', 'text[]', 'boolean')
    ) v(op, l, r, res) LOOP
        FOREACH sch IN ARRAY ARRAY['public', 'pg_temp'] LOOP
            n := n + 1;
            EXECUTE format($f$CREATE FUNCTION %s.hp_op_%s(%s, %s) RETURNS %s LANGUAGE plpgsql AS $b$
                BEGIN PERFORM public.hp_hit(%L); RETURN $1 OPERATOR(pg_catalog.%s) $2; END $b$$f$,
                sch, n, o.l, o.r, o.res, sch || '.' || o.op || '(' || o.l || ', ' || o.r || ')', o.op);
            EXECUTE format('CREATE OPERATOR %s.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %s.hp_op_%s)',
                           sch, o.op, o.l, o.r, sch, n);
        END LOOP;
    END LOOP;
END
$plant$;

-- Functions: (name, argument types, result type, call of the real one).
DO $plant$
DECLARE
    f record;
    sch text;
BEGIN
    FOR f IN SELECT * FROM (VALUES
        ('encode', 'bytea, text', 'text', 'pg_catalog.encode($1, $2)'),
        ('decode', 'text, text', 'bytea', 'pg_catalog.decode($1, $2)'),
        ('repeat', 'text, integer', 'text', 'pg_catalog.repeat($1, $2)'),
        ('sha256', 'bytea', 'bytea', 'pg_catalog.sha256($1)'),
        ('length', 'text', 'integer', 'pg_catalog.length($1)'),
        ('length', 'bytea', 'integer', 'pg_catalog.length($1)'),
        ('lower', 'text', 'text', 'pg_catalog.lower($1)'),
        ('btrim', 'text', 'text', 'pg_catalog.btrim($1)'),
        ('quote_ident', 'text', 'text', 'pg_catalog.quote_ident($1)'),
        ('format', 'text', 'text', 'pg_catalog.format($1)'),
        ('now', '', 'timestamptz', 'pg_catalog.now()'),
        ('clock_timestamp', '', 'timestamptz', 'pg_catalog.clock_timestamp()'),
        ('nextval', 'regclass', 'bigint', 'pg_catalog.nextval($1)'),
        ('current_setting', 'text, boolean', 'text', 'pg_catalog.current_setting($1, $2)'),
        ('current_setting', 'text', 'text', 'pg_catalog.current_setting($1)'),
        ('txid_current', '', 'bigint', 'pg_catalog.txid_current()'),
        ('pg_current_snapshot', '', 'pg_snapshot', 'pg_catalog.pg_current_snapshot()'),
        ('pg_snapshot_xmin', 'pg_snapshot', 'xid8', 'pg_catalog.pg_snapshot_xmin($1)'),
        ('getdatabaseencoding', '', 'name', 'pg_catalog.getdatabaseencoding()'),
        ('convert_from', 'bytea, name', 'text', 'pg_catalog.convert_from($1, $2)'),
        ('jsonb_build_object', 'text, bigint, text, text', 'jsonb', 'pg_catalog.jsonb_build_object($1, $2, $3, $4)'),
        ('jsonb_build_object', 'text, integer, text, text', 'jsonb', 'pg_catalog.jsonb_build_object($1, $2, $3, $4)'),
        ('to_jsonb', 'text', 'jsonb', 'pg_catalog.to_jsonb($1)'),
        ('array_position', 'text[], text', 'integer', 'pg_catalog.array_position($1, $2)'),
        ('cardinality', 'text[]', 'integer', 'pg_catalog.cardinality($1)'),
        ('array_length', 'text[], integer', 'integer', 'pg_catalog.array_length($1, $2)'),
        ('unnest', 'text[]', 'SETOF text', 'pg_catalog.unnest($1)'),
        ('set_config', 'text, text, boolean', 'text', 'pg_catalog.set_config($1, $2, $3)'),
        ('has_table_privilege', 'oid, text', 'boolean', 'pg_catalog.has_table_privilege($1, $2)')
    ) v(fname, args, res, real) LOOP
        FOREACH sch IN ARRAY ARRAY['public', 'pg_temp'] LOOP
            EXECUTE format($f$CREATE FUNCTION %s.%I(%s) RETURNS %s LANGUAGE plpgsql AS $b$
                BEGIN PERFORM public.hp_hit(%L); RETURN %s %s; END $b$$f$,
                sch, f.fname, f.args, f.res, sch || '.' || f.fname || '(' || f.args || ')',
                CASE WHEN f.res LIKE 'SETOF%' THEN 'QUERY SELECT' ELSE '' END, f.real);
        END LOOP;
    END LOOP;
END
$plant$;
-- Aggregates.
CREATE FUNCTION public.hp_max_sfunc(bigint, bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM public.hp_hit('public.max/min(bigint)'); RETURN pg_catalog.int8larger($1, $2); END $$;
CREATE AGGREGATE public.max(bigint) (SFUNC = public.hp_max_sfunc, STYPE = bigint);
CREATE AGGREGATE public.min(bigint) (SFUNC = public.hp_max_sfunc, STYPE = bigint);
CREATE FUNCTION public.hp_count_sfunc(bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM public.hp_hit('public.count(*)'); RETURN $1 OPERATOR(pg_catalog.+) 1; END $$;
CREATE AGGREGATE public.count(*) (SFUNC = public.hp_count_sfunc, STYPE = bigint, INITCOND = '0');
RESET ROLE;

-- The administrator's objects, made before any hostile search path is set.
CREATE TABLE public.hp_t (id int PRIMARY KEY, secret text, v text);
CREATE TABLE public.hp_iso (id int PRIMARY KEY, tenant_id text NOT NULL, v text);
CREATE TABLE public.hp_pt (id int, k int, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
CREATE TABLE public.hp_pt_1 PARTITION OF public.hp_pt FOR VALUES IN (1);
CREATE FUNCTION pg_temp.hp_call(path text, k bigint, sql text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE outcome text := 'ok';
BEGIN
    -- A key id per search path: the key store keeps disabled keys.
    sql := pg_catalog.replace(sql, 'hp_kid', 'hp_kid' OPERATOR(pg_catalog.||) k::pg_catalog.text);
    PERFORM pg_catalog.set_config('search_path', path, true);
    PERFORM pg_catalog.set_config('hp.armed', 'on', true);
    BEGIN
        EXECUTE sql;
    EXCEPTION WHEN OTHERS THEN
        outcome := SQLSTATE OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) SQLERRM;
    END;
    PERFORM pg_catalog.set_config('hp.armed', 'off', true);
    PERFORM pg_catalog.set_config('search_path', '"$user", public', true);
    INSERT INTO pg_temp.hp_results VALUES (path, sql, outcome);
END $$;

-- Every administrative function, under each hostile search path.
CREATE TEMP TABLE hp_calls (n int, sql text);
INSERT INTO hp_calls VALUES
 (1, $$SELECT crm_security.enable_audit('public.hp_t')$$),
 (2, $$SELECT crm_security.enable_audit('public.hp_t', ARRAY['secret'])$$),
 (3, $$INSERT INTO public.hp_t VALUES (1, 's', 'v')$$),
 (4, $$UPDATE public.hp_t SET v = 'w'$$),
 (5, $$DELETE FROM public.hp_t$$),
 (6, $$TRUNCATE public.hp_t$$),
 (7, $$SELECT crm_security.disable_audit('public.hp_t')$$),
 (8, $$SELECT crm_security.log_event('hp.event', 'thing', 'id-1', 'success', '{"a": 1}')$$),
 (9, $$SELECT crm_security.seal_audit_log()$$),
 (10, $$SELECT crm_security.audit_digest()$$),
 (11, $$SELECT * FROM crm_security.verify_audit_log()$$),
 (12, $$SELECT * FROM crm_security.verify_audit_log(crm_security.audit_digest())$$),
 (13, $$SELECT crm_security.audit_canonical_entry(1)$$),
 (14, $$SELECT crm_security.purge_audit_log('100 years')$$),
 (15, $$SELECT crm_security.enable_tenant_isolation('public.hp_iso')$$),
 (16, $$SELECT * FROM crm_security.isolation_report()$$),
 (17, $$SELECT crm_security.disable_tenant_isolation('public.hp_iso')$$),
 (18, $$SELECT crm_security.create_role('hp_role', ARRAY['crm:deals:read'], 'hp-tenant')$$),
 (19, $$SELECT crm_security.alter_role('hp_role', ARRAY['crm:deals:read', 'crm:deals:write'], 'hp-tenant')$$),
 (20, $$SELECT crm_security.grant_role('hp-user', 'hp-tenant', 'hp_role')$$),
 (21, $$SELECT crm_security._granted_permissions('hp-user', 'hp-tenant')$$),
 (22, $$SELECT crm_security.revoke_role('hp-user', 'hp-tenant', 'hp_role')$$),
 (23, $$SELECT crm_security.drop_role('hp_role', 'hp-tenant')$$),
 (24, $$SELECT crm_security.add_jwt_key('hp_kid', 'HS256', 'hp-secret-0123456789-0123456789-abcdef')$$),
 (25, $$SELECT crm_security.import_jwks('{"keys": [{"kty": "oct", "kid": "hp_jwks", "alg": "HS256", "k": "aHAtandrcy1zZWNyZXQtMDEyMzQ1Njc4OS0wMTIzNDU2Nzg5"}]}')$$),
 (26, $$SELECT crm_security.disable_jwt_key('hp_kid')$$),
 (27, $$SELECT crm_security.disable_jwt_key('hp_jwks')$$),
 (28, $$SELECT crm_security.enable_audit('public.hp_t')$$),
 (29, $$SELECT crm_security.disable_audit('public.hp_t')$$),
 (30, $$SELECT crm_security.enable_audit('public.hp_pt')$$),
 (31, $$TRUNCATE public.hp_pt_1$$),
 (32, $$SELECT crm_security.disable_audit('public.hp_pt')$$);

SELECT pg_temp.hp_call(p, s.k, c.sql)
  FROM unnest(ARRAY['"$user", public', 'public, pg_catalog', 'pg_temp, public, pg_catalog']) WITH ORDINALITY s(p, k),
       hp_calls c
 ORDER BY s.k, c.n \g /dev/null

SELECT is((SELECT count(*) FROM hp_results), 96::bigint, 'every call ran under three search paths');
SELECT is((SELECT string_agg(DISTINCT search_path || ' | ' || call || ' | ' || outcome, E'\n')
             FROM hp_results WHERE outcome <> 'ok'), NULL, 'every call succeeded');
SELECT is((SELECT string_agg(DISTINCT what, ', ' ORDER BY what) FROM public.hp_hits), NULL,
          'no planted operator, function or aggregate ran');

-- The planted objects are live: called as the planted code resolves them, they record.
SELECT pg_catalog.set_config('hp.armed', 'on', true) \g /dev/null
SET LOCAL search_path = public, pg_catalog;
SELECT 1::oid = 'crm_security.audit_trigger()'::regprocedure AS planted \g /dev/null
SELECT encode('x'::bytea, 'hex') AS planted \g /dev/null
SELECT max(1::bigint) AS planted \g /dev/null
RESET search_path;
SELECT pg_catalog.set_config('hp.armed', 'off', true) \g /dev/null
SELECT ok((SELECT count(*) FROM public.hp_hits WHERE what = 'public.=(oid, regprocedure)') > 0,
          'the planted = (oid, regprocedure) runs when resolved');
SELECT ok((SELECT count(*) FROM public.hp_hits WHERE what = 'public.encode(bytea, text)') > 0,
          'the planted encode() runs when resolved');
SELECT ok((SELECT count(*) FROM public.hp_hits WHERE what = 'public.max/min(bigint)') > 0,
          'the planted max() runs when resolved');
-- Under the default search path, pg_catalog comes first, but an exact match in public
-- still beats a pg_catalog operator that needs a cast: what the audit's trigger lookup
-- used to compare.
DELETE FROM public.hp_hits;
SELECT pg_catalog.set_config('hp.armed', 'on', true) \g /dev/null
SET LOCAL search_path = "$user", public;
SELECT 1::oid = 'crm_security.audit_trigger()'::regprocedure AS planted \g /dev/null
RESET search_path;
SELECT pg_catalog.set_config('hp.armed', 'off', true) \g /dev/null
SELECT ok((SELECT count(*) FROM public.hp_hits WHERE what = 'public.=(oid, regprocedure)') > 0,
          'with pg_catalog implicitly first, the exact match in public still wins');
SELECT ok(NOT (SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_hp_attacker'), 'the attacker is no superuser');

SELECT * FROM finish();
ROLLBACK;
