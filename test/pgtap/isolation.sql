-- Tenant isolation under attack, as an unprivileged application role that does not own
-- the tables (regress_app), with verified claim contexts.
BEGIN;
SELECT plan(129);

CREATE ROLE regress_app NOSUPERUSER NOBYPASSRLS;
CREATE ROLE regress_owner NOSUPERUSER NOBYPASSRLS;
-- cross-tenant staff: the application's connection role for reviewers and superadmins
CREATE ROLE regress_staff NOSUPERUSER NOBYPASSRLS;
GRANT crm_security_reviewer, crm_security_superadmin TO regress_staff;
\ir include/tap_state.sql
SELECT pg_temp.grant_tap_state('regress_app', 'regress_owner', 'regress_staff');

SELECT crm_security.add_jwt_key('regress_iso', 'HS256', 'regress-isolation-secret-0123456789abcdef');
CREATE FUNCTION pg_temp.tok(claims jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT crm_security.jwt_sign(claims || jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600),
                                 'regress-isolation-secret-0123456789abcdef', 'HS256')
$$;
-- Run a query, give its row count as text, or the SQLSTATE it raised: a check that must
-- fail closed passes with either "0" or an error, never with rows.
CREATE FUNCTION pg_temp.outcome(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE 'SELECT count(*) FROM (' || q || ') s' INTO n;
    RETURN n::text;
EXCEPTION WHEN OTHERS THEN
    RETURN 'error ' || SQLSTATE;
END $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;

\set ta '''aaaaaaaa-0000-0000-0000-000000000001'''
\set tb '''bbbbbbbb-0000-0000-0000-000000000002'''
CREATE TABLE public.iso_contacts (
    id int PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    email text UNIQUE
);
CREATE INDEX ON public.iso_contacts (tenant_id);
INSERT INTO public.iso_contacts VALUES
    (1, :ta, 'alice-contact-1', 'a1@example.com'),
    (2, :ta, 'alice-contact-2', 'a2@example.com'),
    (3, :ta, 'alice-contact-3', 'a3@example.com'),
    (11, :tb, 'secret-b-1', 'b1@example.com'),
    (12, :tb, 'secret-b-2', 'b2@example.com');
GRANT SELECT, INSERT, UPDATE, DELETE ON public.iso_contacts TO regress_app, regress_staff;

-- enable: forced RLS and the policies; twice is the same as once
SELECT lives_ok($$SELECT crm_security.enable_tenant_isolation('public.iso_contacts')$$, 'enable_tenant_isolation');
SELECT lives_ok($$SELECT crm_security.enable_tenant_isolation('public.iso_contacts', 'tenant_id')$$, 'enable_tenant_isolation again');
SELECT ok(relrowsecurity AND relforcerowsecurity, 'row level security enabled and forced')
  FROM pg_class WHERE oid = 'public.iso_contacts'::regclass;
SELECT is((SELECT count(*)::int FROM pg_policy WHERE polrelid = 'public.iso_contacts'::regclass), 6,
          'six policies, none duplicated');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = 'public.iso_contacts'::regclass AND NOT polpermissive),
          'none of them restrictive');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = 'public.iso_contacts'::regclass
                        AND (pg_get_expr(polqual, polrelid) ~* 'select' OR pg_get_expr(polwithcheck, polrelid) ~* 'select')),
          'no policy contains a subquery');

-- bad arguments
SELECT throws_ok($$SELECT crm_security.enable_tenant_isolation('public.iso_contacts', 'nope')$$, '42703', NULL, 'unknown tenant column');
SELECT throws_ok($$SELECT crm_security.enable_tenant_isolation(NULL)$$, '22023', NULL, 'NULL table');
SELECT throws_ok($$SELECT crm_security.enable_tenant_isolation('pg_catalog.pg_class_oid_index')$$, '22023', NULL, 'an index is not a table');
CREATE TABLE public.iso_numeric (tenant_id numeric);
SELECT throws_ok($$SELECT crm_security.enable_tenant_isolation('public.iso_numeric')$$, '22023', NULL, 'unsupported column type');

SET ROLE regress_app;

-- no context: nothing
SELECT is_empty('SELECT * FROM public.iso_contacts', 'no context: no rows');
SELECT throws_ok($$INSERT INTO public.iso_contacts VALUES (20, 'aaaaaaaa-0000-0000-0000-000000000001', 'x')$$,
                 '42501', NULL, 'no context: no insert');
SELECT is_empty('UPDATE public.iso_contacts SET name = name RETURNING id', 'no context: no update');

-- tenant A
SELECT ok(crm_security.set_claim_context(pg_temp.tok(jsonb_build_object('sub', 'alice', 'tenant_id', :ta))) IS NOT NULL,
          'context of tenant A');
SELECT results_eq('SELECT id FROM public.iso_contacts ORDER BY id', ARRAY[1, 2, 3], 'tenant A sees its rows only');
SELECT is_empty($$SELECT * FROM public.iso_contacts WHERE tenant_id = 'bbbbbbbb-0000-0000-0000-000000000002'$$,
                'an explicit WHERE on tenant B finds nothing');
SELECT is_empty('SELECT * FROM public.iso_contacts WHERE id = 11', 'a key of tenant B finds nothing');
SELECT throws_ok($$INSERT INTO public.iso_contacts VALUES (21, 'bbbbbbbb-0000-0000-0000-000000000002', 'planted')$$,
                 '42501', NULL, 'cannot insert into tenant B');
SELECT lives_ok($$INSERT INTO public.iso_contacts VALUES (4, 'aaaaaaaa-0000-0000-0000-000000000001', 'alice-contact-4')$$,
                'can insert into its own tenant');
SELECT is_empty($$UPDATE public.iso_contacts SET name = 'overwritten' WHERE id IN (11, 12) RETURNING id$$,
                'cannot update rows of tenant B');
SELECT is_empty($$UPDATE public.iso_contacts SET name = 'overwritten' WHERE tenant_id = 'bbbbbbbb-0000-0000-0000-000000000002' RETURNING id$$,
                'cannot update rows of tenant B by tenant');
SELECT is_empty('DELETE FROM public.iso_contacts WHERE id >= 11 RETURNING id', 'cannot delete rows of tenant B');
SELECT throws_ok($$UPDATE public.iso_contacts SET tenant_id = 'bbbbbbbb-0000-0000-0000-000000000002' WHERE id = 1$$,
                 '42501', NULL, 'cannot move a row to tenant B');
SELECT throws_ok($$INSERT INTO public.iso_contacts VALUES (11, 'aaaaaaaa-0000-0000-0000-000000000001', 'x')
                   ON CONFLICT (id) DO UPDATE SET name = 'taken over', tenant_id = EXCLUDED.tenant_id$$,
                 '42501', NULL, 'ON CONFLICT DO UPDATE cannot take over a row of tenant B');
SELECT throws_ok($$INSERT INTO public.iso_contacts VALUES (1, 'aaaaaaaa-0000-0000-0000-000000000001', 'x')
                   ON CONFLICT (id) DO UPDATE SET tenant_id = 'bbbbbbbb-0000-0000-0000-000000000002'$$,
                 '42501', NULL, 'ON CONFLICT DO UPDATE cannot move its own row to tenant B');
SELECT lives_ok($$INSERT INTO public.iso_contacts VALUES (1, 'aaaaaaaa-0000-0000-0000-000000000001', 'x')
                  ON CONFLICT (id) DO UPDATE SET name = 'alice-contact-1'$$,
                'ON CONFLICT DO UPDATE on its own row works');

-- a leaky function in WHERE: the policy is evaluated first, the function never sees B rows
CREATE FUNCTION pg_temp.leak(t text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN
    RAISE NOTICE 'leaked %', t;
    INSERT INTO pg_temp.leaked VALUES (t);
    RETURN true;
END $$;
RESET ROLE;
CREATE TEMP TABLE leaked (v text);
GRANT ALL ON pg_temp.leaked TO regress_app;
SET ROLE regress_app;
SELECT results_eq('SELECT id FROM public.iso_contacts WHERE pg_temp.leak(name) ORDER BY id', ARRAY[1, 2, 3, 4],
                  'a leaky function in WHERE returns own rows');
SELECT is_empty($$SELECT * FROM pg_temp.leaked WHERE v LIKE 'secret%'$$, 'the leaky function never saw a row of tenant B');
SELECT is_empty($$SELECT * FROM public.iso_contacts WHERE 1 / (CASE WHEN name LIKE 'secret%' THEN 0 ELSE 1 END) = 1 AND id > 10$$,
                'no division-by-zero oracle on rows of tenant B');

-- a prepared statement and a PL/pgSQL cached plan, re-run under another context
SET plan_cache_mode = force_generic_plan;
PREPARE iso_q AS SELECT id FROM public.iso_contacts ORDER BY id;
SELECT results_eq('EXECUTE iso_q', ARRAY[1, 2, 3, 4], 'prepared statement under tenant A');
CREATE FUNCTION pg_temp.iso_ids() RETURNS int[] LANGUAGE plpgsql AS $$
BEGIN
    RETURN ARRAY(SELECT id FROM public.iso_contacts ORDER BY id);
END $$;
SELECT is(pg_temp.iso_ids(), ARRAY[1, 2, 3, 4], 'PL/pgSQL under tenant A');
SELECT ok(crm_security.set_claim_context(pg_temp.tok(jsonb_build_object('sub', 'bob', 'tenant_id', :tb))) IS NOT NULL,
          'context of tenant B');
SELECT results_eq('EXECUTE iso_q', ARRAY[11, 12], 'the same prepared statement under tenant B');
SELECT is(pg_temp.iso_ids(), ARRAY[11, 12], 'the same PL/pgSQL plan under tenant B');
SELECT lives_ok('SELECT crm_security.clear_claim_context()', 'clear the context');
SELECT is_empty('EXECUTE iso_q', 'the prepared statement without a context');
SELECT is(pg_temp.iso_ids(), '{}'::int[], 'the PL/pgSQL plan without a context');
DEALLOCATE iso_q;
RESET plan_cache_mode;

-- switching row level security off is refused for a role that is subject to it
SET row_security = off;
SELECT throws_ok('SELECT * FROM public.iso_contacts', '42501', NULL, 'row_security = off raises instead of showing rows');
RESET row_security;
SELECT throws_ok('ALTER TABLE public.iso_contacts DISABLE ROW LEVEL SECURITY', '42501', NULL, 'cannot disable RLS');
SELECT throws_ok($$SELECT crm_security.disable_tenant_isolation('public.iso_contacts')$$, '42501', NULL, 'cannot drop the policies');
SELECT throws_ok('TRUNCATE public.iso_contacts', '42501', NULL, 'cannot TRUNCATE');
SELECT throws_ok('SELECT * FROM crm_security.jwt_keys', '42501', NULL, 'cannot read jwt_keys');

-- spoofing: settings that look like claims give nothing
SELECT ok(set_config('request.jwt.claims', jsonb_build_object('sub', 'bob', 'tenant_id', :tb, 'role', 'superadmin')::text, true) IS NOT NULL,
          'the application may write request.jwt.claims');
SELECT ok(set_config('request.jwt.claim.tenant_id', :tb, true) IS NOT NULL, 'and request.jwt.claim.tenant_id');
SELECT ok(set_config('request.jwt.claim.role', 'superadmin', true) IS NOT NULL, 'and request.jwt.claim.role');
SELECT is_empty('SELECT * FROM public.iso_contacts', 'spoofed request.jwt.claims without a context: no rows');
SELECT ok(crm_security.set_claim_context(pg_temp.tok(jsonb_build_object('sub', 'alice', 'tenant_id', :ta))) IS NOT NULL,
          'context of tenant A again');
SELECT ok(set_config('request.jwt.claims', jsonb_build_object('sub', 'bob', 'tenant_id', :tb, 'role', 'superadmin')::text, true) IS NOT NULL
          AND set_config('request.jwt.claim.tenant_id', :tb, true) IS NOT NULL, 'spoof over a context');
SELECT results_eq('SELECT id FROM public.iso_contacts ORDER BY id', ARRAY[1, 2, 3, 4],
                  'spoofed request.jwt.claims over a context change nothing');
SELECT throws_ok($$SET crm_security.tenant_claim = 'sub'$$, '42501', NULL, 'cannot redirect the tenant claim');
SELECT throws_ok($$SET crm_security.role_claim = 'tenant_id'$$, '42501', NULL, 'cannot redirect the role claim');

-- forged, expired, unsigned tokens: refused, and they leave no context behind
SELECT lives_ok('SELECT crm_security.clear_claim_context()', 'clear the context');
SELECT throws_ok(format('SELECT crm_security.set_claim_context(%L)',
                        crm_security.jwt_sign(jsonb_build_object('sub', 'eve', 'tenant_id', :tb, 'role', 'superadmin',
                                                                 'exp', extract(epoch FROM now())::bigint + 600),
                                              'a-key-nobody-trusts-0123456789abcdef', 'HS256')),
                 '28000', NULL, 'a token signed with an untrusted key is refused');
SELECT throws_ok(format('SELECT crm_security.set_claim_context(%L)',
                        crm_security.jwt_sign(jsonb_build_object('sub', 'eve', 'tenant_id', :tb,
                                                                 'exp', extract(epoch FROM now())::bigint - 3600),
                                              'regress-isolation-secret-0123456789abcdef', 'HS256')),
                 '28000', NULL, 'an expired token is refused');
SELECT throws_ok(format('SELECT crm_security.set_claim_context(%L)',
                        rtrim(translate(encode(convert_to('{"alg":"none","typ":"JWT"}', 'UTF8'), 'base64'), '+/', '-_'), '=')
                        || '.' ||
                        rtrim(translate(encode(convert_to(jsonb_build_object('sub', 'eve', 'tenant_id', :tb,
                              'exp', extract(epoch FROM now())::bigint + 600)::text, 'UTF8'), 'base64'), '+/', '-_'), '=')
                        || '.'),
                 '28000', NULL, 'an alg "none" token is refused');
SELECT is(pg_temp.outcome('SELECT * FROM public.iso_contacts'), '0', 'after refused tokens: still no rows');
SELECT ok(pg_temp.outcome(format($$SELECT set_config('crm_security.token', %L, true)$$,
                              crm_security.jwt_sign(jsonb_build_object('sub', 'eve', 'tenant_id', :tb,
                                                    'exp', extract(epoch FROM now())::bigint + 600),
                                                    'a-key-nobody-trusts-0123456789abcdef', 'HS256'))) IS NOT NULL,
          'write a forged token into the context setting');
SELECT ok(pg_temp.outcome('SELECT * FROM public.iso_contacts') IN ('0', 'error 28000'),
          'a forged token written into the context setting gives no rows');
SELECT crm_security.clear_claim_context();

-- tenant claims that are not a uuid fail closed
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"mallory","tenant_id":"not-a-uuid"}')) IS NOT NULL,
          'context with a non-uuid tenant');
SELECT is(pg_temp.outcome('SELECT * FROM public.iso_contacts'), '0', 'a non-uuid tenant sees nothing');
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"mallory","tenant_id":"aaaaaaaa-0000-0000-0000-000000000001 OR true"}')) IS NOT NULL,
          'context with an injection-looking tenant');
SELECT is(pg_temp.outcome('SELECT * FROM public.iso_contacts'), '0', 'an injection-looking tenant sees nothing');
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"mallory","tenant_id":12345}')) IS NOT NULL,
          'context with a numeric tenant');
SELECT is(pg_temp.outcome('SELECT * FROM public.iso_contacts'), '0', 'a numeric tenant sees nothing of a uuid column');
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"mallory","tenant_id":["aaaaaaaa-0000-0000-0000-000000000001"]}')) IS NOT NULL,
          'context with an array as tenant');
SELECT is(pg_temp.outcome('SELECT * FROM public.iso_contacts'), '0', 'an array tenant sees nothing');
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"mallory","tenant_id":null}')) IS NOT NULL,
          'context with a null tenant');
SELECT is(pg_temp.outcome('SELECT * FROM public.iso_contacts'), '0', 'a null tenant sees nothing');
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{}')) IS NOT NULL, 'context with no claims but exp');
SELECT is(pg_temp.outcome('SELECT * FROM public.iso_contacts'), '0', 'an empty context sees nothing');
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"mallory","tenant_id":"AAAAAAAA-0000-0000-0000-000000000001"}')) IS NOT NULL,
          'context with an upper-case uuid');
SELECT is(pg_temp.outcome('SELECT * FROM public.iso_contacts'), '4', 'an upper-case uuid is the same tenant (uuid comparison)');
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"mallory"}')) IS NOT NULL, 'context without a tenant');
SELECT is(pg_temp.outcome('SELECT * FROM public.iso_contacts'), '0', 'no tenant claim: no rows');

-- a reviewer's token on a member's connection: its own tenant, no writes
SELECT ok(crm_security.set_claim_context(pg_temp.tok(jsonb_build_object('sub', 'rita', 'tenant_id', :ta, 'role', 'reviewer'))) IS NOT NULL,
          'reviewer context');
SELECT results_eq('SELECT id FROM public.iso_contacts ORDER BY id', ARRAY[1, 2, 3, 4],
                  'a reviewer token without the database role reads its own tenant only');
SELECT throws_ok($$INSERT INTO public.iso_contacts VALUES (30, 'aaaaaaaa-0000-0000-0000-000000000001', 'x')$$,
                 '42501', NULL, 'the reviewer cannot insert, even into its own tenant');
SELECT is_empty($$UPDATE public.iso_contacts SET name = 'reviewed' RETURNING id$$, 'the reviewer updates nothing');
SELECT is_empty('DELETE FROM public.iso_contacts RETURNING id', 'the reviewer deletes nothing');
-- a superadmin's token on a member's connection: no tenant, nothing
SELECT ok(crm_security.set_claim_context(pg_temp.tok(jsonb_build_object('sub', 'sam', 'role', 'superadmin'))) IS NOT NULL,
          'superadmin context');
SELECT is_empty('SELECT id FROM public.iso_contacts', 'a superadmin token without the database role reads nothing');
SELECT throws_ok($$INSERT INTO public.iso_contacts VALUES (13, 'bbbbbbbb-0000-0000-0000-000000000002', 'secret-b-3')$$,
                 '42501', NULL, 'nor inserts');
RESET ROLE;

-- reviewer with the database role: reads every tenant, writes nothing
SET ROLE regress_staff;
SELECT ok(crm_security.set_claim_context(pg_temp.tok(jsonb_build_object('sub', 'rita', 'tenant_id', :ta, 'role', 'reviewer'))) IS NOT NULL,
          'reviewer context on the staff connection');
SELECT results_eq('SELECT id FROM public.iso_contacts ORDER BY id', ARRAY[1, 2, 3, 4, 11, 12], 'the reviewer reads every tenant');
SELECT throws_ok($$INSERT INTO public.iso_contacts VALUES (30, 'aaaaaaaa-0000-0000-0000-000000000001', 'x')$$,
                 '42501', NULL, 'the reviewer cannot insert, even into its own tenant');
SELECT is_empty($$UPDATE public.iso_contacts SET name = 'reviewed' RETURNING id$$, 'the reviewer updates nothing');
SELECT is_empty('DELETE FROM public.iso_contacts RETURNING id', 'the reviewer deletes nothing');

-- superadmin with the database role: everything
SELECT ok(crm_security.set_claim_context(pg_temp.tok(jsonb_build_object('sub', 'sam', 'role', 'superadmin'))) IS NOT NULL,
          'superadmin context');
SELECT results_eq('SELECT id FROM public.iso_contacts ORDER BY id', ARRAY[1, 2, 3, 4, 11, 12], 'the superadmin reads every tenant');
SELECT results_eq($$UPDATE public.iso_contacts SET name = name WHERE id IN (2, 12) RETURNING id$$, ARRAY[2, 12],
                  'the superadmin updates every tenant');
SELECT lives_ok($$INSERT INTO public.iso_contacts VALUES (13, 'bbbbbbbb-0000-0000-0000-000000000002', 'secret-b-3')$$,
                'the superadmin inserts anywhere');

RESET ROLE;
-- what tenant A tried left tenant B untouched
SELECT results_eq($$SELECT id, name FROM public.iso_contacts WHERE tenant_id = 'bbbbbbbb-0000-0000-0000-000000000002' ORDER BY id$$,
                  $$VALUES (11, 'secret-b-1'), (12, 'secret-b-2'), (13, 'secret-b-3')$$, 'tenant B rows are intact');

-- the owner is subject to the policies too (FORCE)
SELECT crm_security.clear_claim_context();
ALTER TABLE public.iso_contacts OWNER TO regress_owner;
SET ROLE regress_owner;
SELECT is_empty('SELECT * FROM public.iso_contacts', 'the table owner sees nothing without a context');
SELECT ok(crm_security.set_claim_context(pg_temp.tok(jsonb_build_object('sub', 'bob', 'tenant_id', :tb))) IS NOT NULL,
          'owner with the context of tenant B');
SELECT results_eq('SELECT id FROM public.iso_contacts ORDER BY id', ARRAY[11, 12, 13], 'the owner sees tenant B only');
RESET ROLE;
SELECT crm_security.clear_claim_context();

-- other column types: bigint, integer, text
CREATE TABLE public.iso_big (id int, tenant_id bigint NOT NULL);
CREATE TABLE public.iso_int (id int, org integer NOT NULL);
CREATE TABLE public.iso_text (id int, tenant_id varchar(40) NOT NULL);
INSERT INTO public.iso_big VALUES (1, 42), (2, 43), (3, -9223372036854775808);
INSERT INTO public.iso_int VALUES (1, 42), (2, 43);
INSERT INTO public.iso_text VALUES (1, '42'), (2, 'acme'), (3, '');
SELECT crm_security.enable_tenant_isolation('public.iso_big');
SELECT crm_security.enable_tenant_isolation('public.iso_int', 'org');
SELECT crm_security.enable_tenant_isolation('public.iso_text');
GRANT SELECT ON public.iso_big, public.iso_int, public.iso_text TO regress_app, regress_staff;
SET ROLE regress_app;
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"u","tenant_id":"42"}')) IS NOT NULL, 'tenant "42"');
SELECT is(ARRAY(SELECT id FROM public.iso_big) || ARRAY(SELECT id FROM public.iso_int) || ARRAY(SELECT id FROM public.iso_text),
          ARRAY[1, 1, 1], 'tenant "42" sees row 1 of the bigint, integer and text tables');
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"u","tenant_id":"42abc"}')) IS NOT NULL, 'tenant "42abc"');
SELECT is(ARRAY(SELECT id FROM public.iso_big) || ARRAY(SELECT id FROM public.iso_int) || ARRAY(SELECT id FROM public.iso_text),
          '{}'::int[], 'a tenant that is not a number sees nothing of numeric tables');
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"u","tenant_id":"99999999999"}')) IS NOT NULL, 'tenant beyond integer');
SELECT is(pg_temp.outcome('SELECT * FROM public.iso_int'), '0', 'an integer overflow sees nothing');
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"u","tenant_id":""}')) IS NOT NULL, 'empty tenant');
SELECT is(ARRAY(SELECT id FROM public.iso_big) || ARRAY(SELECT id FROM public.iso_text), '{}'::int[],
          'an empty tenant sees nothing, not even rows with an empty tenant');
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"u","role":"reviewer"}')) IS NOT NULL, 'reviewer without a tenant');
SELECT is((SELECT count(*)::int FROM public.iso_big) + (SELECT count(*)::int FROM public.iso_text), 0,
          'on a member''s connection the reviewer without a tenant reads nothing');
RESET ROLE;
SET ROLE regress_staff;
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"u","role":"reviewer"}')) IS NOT NULL, 'reviewer without a tenant, staff connection');
SELECT is((SELECT count(*)::int FROM public.iso_big) + (SELECT count(*)::int FROM public.iso_text), 6,
          'the reviewer reads every row, the smallest values included');
RESET ROLE;
SELECT crm_security.clear_claim_context();

-- partitions are protected when queried directly
CREATE TABLE public.iso_parted (id int, tenant_id text NOT NULL) PARTITION BY LIST (tenant_id);
CREATE TABLE public.iso_parted_a PARTITION OF public.iso_parted FOR VALUES IN ('a');
CREATE TABLE public.iso_parted_b PARTITION OF public.iso_parted FOR VALUES IN ('b');
INSERT INTO public.iso_parted VALUES (1, 'a'), (2, 'b');
SELECT crm_security.enable_tenant_isolation('public.iso_parted');
GRANT SELECT ON public.iso_parted, public.iso_parted_a, public.iso_parted_b TO regress_app;
SET ROLE regress_app;
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"u","tenant_id":"a"}')) IS NOT NULL, 'tenant "a"');
SELECT results_eq('SELECT id FROM public.iso_parted UNION ALL SELECT id FROM public.iso_parted_b', ARRAY[1],
                  'the partition of tenant b, queried directly, shows nothing');
RESET ROLE;

-- the tenant index is used: the policy is an index condition
CREATE TABLE public.iso_big_contacts (id int, tenant_id uuid NOT NULL, name text);
INSERT INTO public.iso_big_contacts
SELECT i, ('00000000-0000-0000-0000-' || lpad((i % 200)::text, 12, '0'))::uuid, 'n' || i FROM generate_series(1, 20000) i;
CREATE INDEX ON public.iso_big_contacts (tenant_id);
ANALYZE public.iso_big_contacts;
SELECT crm_security.enable_tenant_isolation('public.iso_big_contacts');
GRANT SELECT ON public.iso_big_contacts TO regress_app;
SET ROLE regress_app;
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"u","tenant_id":"00000000-0000-0000-0000-000000000007"}')) IS NOT NULL,
          'tenant 7');
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; result text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN ' || q LOOP result := result || line || E'\n'; END LOOP;
    RETURN result;
END $$;
SELECT matches(pg_temp.plan_of('SELECT * FROM public.iso_big_contacts'),
               'Index Cond: \(tenant_id = crm_security\.tenant_id_uuid\(\)\)',
               'EXPLAIN shows an index condition on the tenant column');
SELECT doesnt_match(pg_temp.plan_of('SELECT * FROM public.iso_big_contacts'), 'Seq Scan', 'no sequential scan');
SELECT is((SELECT count(*)::int FROM public.iso_big_contacts), 100, 'tenant 7 counts its 100 rows');
RESET ROLE;

-- cross_tenant => false: one equality per policy, ordered index scans, no cross-tenant reads
RESET ROLE;
CREATE TABLE public.iso_eq (id int, tenant_id uuid NOT NULL, name text);
INSERT INTO public.iso_eq
SELECT i, ('00000000-0000-0000-0000-' || lpad((i % 200)::text, 12, '0'))::uuid, 'n' || i FROM generate_series(1, 20000) i;
CREATE INDEX ON public.iso_eq (tenant_id, id);
ANALYZE public.iso_eq;
SELECT throws_ok($$SELECT crm_security.enable_tenant_isolation('public.iso_eq', 'tenant_id', NULL)$$, '22023', NULL,
                 'cross_tenant must not be NULL');
SELECT crm_security.enable_tenant_isolation('public.iso_eq', cross_tenant => false);
SELECT is((SELECT array_agg(polname::text || ' ' || polroles::regrole[]::text ORDER BY polname) FROM pg_policy
            WHERE polrelid = 'public.iso_eq'::regclass),
          '{"crm_tenant_delete {-}","crm_tenant_insert {-}","crm_tenant_select {-}","crm_tenant_update {-}"}'::text[],
          'without cross_tenant only the four policies of members, TO PUBLIC');
GRANT SELECT, INSERT, UPDATE ON public.iso_eq TO regress_app, regress_staff;
SET ROLE regress_app;
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"u","tenant_id":"00000000-0000-0000-0000-000000000007"}')) IS NOT NULL,
          'tenant 7');
SELECT matches(pg_temp.plan_of('SELECT * FROM public.iso_eq ORDER BY id DESC LIMIT 10'),
               'Index Scan Backward using iso_eq_tenant_id_id_idx',
               'ORDER BY ... LIMIT reads the (tenant_id, id) index in order');
SELECT doesnt_match(pg_temp.plan_of('SELECT * FROM public.iso_eq ORDER BY id DESC LIMIT 10'), 'Sort',
                    'and sorts nothing');
SELECT results_eq('SELECT id FROM public.iso_eq ORDER BY id DESC LIMIT 3', ARRAY[19807, 19607, 19407],
                  'the latest rows of tenant 7');
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"r","role":"reviewer","tenant_id":"00000000-0000-0000-0000-000000000008"}')) IS NOT NULL,
          'reviewer of tenant 8');
SELECT is((SELECT count(*)::int FROM public.iso_eq), 100, 'without cross_tenant the reviewer reads its own tenant only');
SELECT throws_ok($$INSERT INTO public.iso_eq VALUES (0, '00000000-0000-0000-0000-000000000008', 'x')$$, '42501', NULL,
                 'and still writes nothing');
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"s","role":"superadmin"}')) IS NOT NULL, 'superadmin without tenant');
SELECT is((SELECT count(*)::int FROM public.iso_eq), 0, 'without cross_tenant the superadmin has no tenant to read');
SELECT throws_ok($$INSERT INTO public.iso_eq VALUES (0, '00000000-0000-0000-0000-000000000008', 'x')$$, '42501', NULL,
                 'nor to write');
RESET ROLE;
SELECT lives_ok($$SELECT crm_security.enable_tenant_isolation('public.iso_eq')$$, 'switch back to cross_tenant');
SET ROLE regress_app;
SELECT is((SELECT count(*)::int FROM public.iso_eq), 0, 'a superadmin token on a member''s connection still reads nothing');
RESET ROLE;
SET ROLE regress_staff;
SELECT ok(crm_security.set_claim_context(pg_temp.tok('{"sub":"s","role":"superadmin"}')) IS NOT NULL, 'superadmin, staff connection');
SELECT is((SELECT count(*)::int FROM public.iso_eq), 20000, 'now the superadmin reads every tenant');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
