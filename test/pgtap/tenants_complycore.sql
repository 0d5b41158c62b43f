-- ComplyCore's flow end to end: a plain Supabase Auth access token (ES256, verified through
-- the project's JWKS; sub, role "authenticated", email, no tenant claim) and memberships in
-- the database.  The four roles (client_user, client_admin, reviewer, superadmin) work as
-- API.md section 4 says; a consultant in two tenants sees only the active one's rows, and
-- the audit entries carry it.
BEGIN;
SELECT plan(36);

CREATE ROLE regress_cc_app NOSUPERUSER NOBYPASSRLS;
CREATE ROLE regress_cc_staff NOSUPERUSER NOBYPASSRLS;
-- The cross-tenant roles in the database, where the extension has them (API.md section 4).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'crm_security_reviewer') THEN
        GRANT crm_security_reviewer TO regress_cc_staff;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'crm_security_superadmin') THEN
        GRANT crm_security_superadmin TO regress_cc_staff;
    END IF;
END $$;
\ir include/tap_state.sql
SELECT pg_temp.grant_tap_state('regress_cc_app', 'regress_cc_staff');

-- The project's JWKS as /auth/v1/.well-known/jwks.json serves it (see context_supabase.sql).
CREATE TEMP TABLE sb AS SELECT
    '{"keys": [{"alg": "ES256", "crv": "P-256", "ext": true, "key_ops": ["verify"], "kid": "sb-0f3c-kid", "kty": "EC", "use": "sig", "x": "Jbi3NUU366K5NA-H5_XfHw3vcUJs2ZiBjQpcwi6IRF8", "y": "QLwm0jVeeHu2s8tfHoQ-kCqsEM5EQFnsWwCfyEuKF0o"}]}'::jsonb AS jwks,
    '{"kty": "EC", "crv": "P-256", "kid": "sb-0f3c-kid", "x": "Jbi3NUU366K5NA-H5_XfHw3vcUJs2ZiBjQpcwi6IRF8", "y": "QLwm0jVeeHu2s8tfHoQ-kCqsEM5EQFnsWwCfyEuKF0o", "d": "MUIgM2BK1OiZLmxIOhp89clCEdPbqQEXBHyb2mD-JgI"}'::jsonb AS private_jwk,
    '{"kty": "EC", "crv": "P-256", "kid": "sb-0f3c-kid", "x": "IGvGKfQ-LwYWOeZh2CTDDVD_on5aYJpDIP5CMh7scPU", "y": "Z1JgOBp8fMdRpyfx_o_tMhCZE5o4HzIphy8Ka4XsEdI", "d": "MDLP_JgTMH5-j-zkxRhqT9XM1PDn7NRNfu6KCc7ECFc"}'::jsonb AS attacker_jwk,
    'https://abcdefgh.supabase.co/auth/v1'::text AS iss;
SELECT is(crm_security.import_jwks((SELECT jwks FROM sb), (SELECT iss FROM sb)), 1, 'the Supabase JWKS is imported');
SET LOCAL crm_security.jwt_audience = 'authenticated';

-- Tokens as Supabase Auth issues them: no tenant, no application role.
CREATE FUNCTION pg_temp.sb_token(sub uuid, email text, key jsonb DEFAULT NULL) RETURNS text LANGUAGE sql AS $$
    SELECT crm_security.jwt_sign(jsonb_build_object(
        'iss', (SELECT iss FROM sb), 'sub', sub, 'aud', 'authenticated',
        'exp', extract(epoch FROM now())::bigint + 3600, 'iat', extract(epoch FROM now())::bigint,
        'email', email, 'phone', '', 'role', 'authenticated', 'aal', 'aal1',
        'session_id', gen_random_uuid(), 'is_anonymous', false,
        'app_metadata', jsonb_build_object('provider', 'email', 'providers', jsonb_build_array('email')),
        'user_metadata', '{}'::jsonb),
        coalesce(key, (SELECT private_jwk FROM sb)), 'ES256', NULL)
$$;
CREATE TEMP TABLE u (name text PRIMARY KEY, id uuid NOT NULL);
INSERT INTO u VALUES ('alice', '0a000000-0000-4000-8000-00000000000a'), ('bob', '0b000000-0000-4000-8000-00000000000b'),
    ('carol', '0c000000-0000-4000-8000-00000000000c'), ('rita', '0d000000-0000-4000-8000-00000000000d'),
    ('sam', '0e000000-0000-4000-8000-00000000000e');
CREATE FUNCTION pg_temp.uid(n text) RETURNS text LANGUAGE sql AS $$ SELECT id::text FROM u WHERE name = n $$;
CREATE FUNCTION pg_temp.login(n text, tenant text DEFAULT NULL, request_id text DEFAULT NULL) RETURNS void LANGUAGE sql AS $$
    SELECT NULL::void FROM crm_security.set_claim_context(
        pg_temp.sb_token((SELECT id FROM u WHERE name = n), n || '@example.com'), tenant, request_id)
$$;
GRANT SELECT ON sb, u TO PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;

-- ComplyCore's tenants are uuids.
\set ta '''aaaaaaaa-0000-4000-8000-000000000001'''
\set tb '''bbbbbbbb-0000-4000-8000-000000000002'''
\set tops '''00000000-0000-4000-8000-0000000000ff'''
SELECT crm_security.add_tenant(:ta, 'Client A');
SELECT crm_security.add_tenant(:tb, 'Client B');
SELECT crm_security.add_tenant(:tops, 'Operations');
SELECT crm_security.add_tenant_member(:ta, pg_temp.uid('alice'), 'client_user');
SELECT crm_security.add_tenant_member(:ta, pg_temp.uid('bob'), 'client_admin');
SELECT crm_security.add_tenant_member(:ta, pg_temp.uid('carol'), 'client_user');
SELECT crm_security.add_tenant_member(:tb, pg_temp.uid('carol'), 'client_admin');
SELECT crm_security.add_tenant_member(:tops, pg_temp.uid('rita'), 'reviewer');
SELECT crm_security.add_tenant_member(:tops, pg_temp.uid('sam'), 'superadmin');

CREATE TABLE public.cc_controls (id int PRIMARY KEY, tenant_id uuid NOT NULL, name text NOT NULL);
CREATE INDEX ON public.cc_controls (tenant_id);
INSERT INTO public.cc_controls VALUES (1, :ta, 'a-1'), (2, :ta, 'a-2'), (3, :ta, 'a-3'), (11, :tb, 'b-1'), (12, :tb, 'b-2');
SELECT crm_security.enable_tenant_isolation('public.cc_controls');
SELECT crm_security.enable_audit('public.cc_controls');
GRANT SELECT, INSERT, UPDATE, DELETE ON public.cc_controls TO regress_cc_app, regress_cc_staff;

SET LOCAL ROLE regress_cc_app;

-- client_user
SELECT pg_temp.login('alice');
SELECT is(crm_security.tenant_id(), :ta, 'client_user: the tenant comes from the membership');
SELECT is(crm_security.app_role(), 'client_user', 'client_user: and the role');
SELECT is(current_setting('request.jwt.claim.role'), 'authenticated', 'Supabase''s auth.role() still reads the token''s role');
SELECT is(crm_security.actor_type(), 'user', 'a user context');
SELECT is((SELECT array_agg(id ORDER BY id) FROM public.cc_controls), '{1,2,3}'::int[], 'client_user reads their tenant''s rows');
SELECT ok(crm_security.can('crm:contacts:read') AND NOT crm_security.can('crm:users:manage'), 'client_user''s permissions, not client_admin''s');
SELECT is((SELECT count(*)::int FROM crm_security.tenant_members), 1, 'client_user sees only their own membership');
SELECT throws_ok($$INSERT INTO public.cc_controls VALUES (99, 'bbbbbbbb-0000-4000-8000-000000000002', 'x')$$, '42501', NULL,
    'client_user cannot write into another tenant');

-- client_admin
SELECT pg_temp.login('bob');
SELECT is(crm_security.app_role(), 'client_admin', 'client_admin: the membership''s role');
SELECT ok(crm_security.can('crm:users:manage') AND crm_security.can('crm:contacts:read'), 'client_admin''s permissions, client_user''s inherited');
SELECT is((SELECT count(*)::int FROM crm_security.tenant_members), 3, 'client_admin sees the members of their tenant');
SELECT is((SELECT count(*)::int FROM crm_security.tenant_members WHERE tenant_id <> 'aaaaaaaa-0000-4000-8000-000000000001'), 0,
    '... and of no other');
SELECT is((SELECT array_agg(id ORDER BY id) FROM public.cc_controls), '{1,2,3}'::int[], 'client_admin reads their tenant only');

-- The consultant in two tenants switches between them.
SELECT throws_ok($$SELECT pg_temp.login('carol')$$, '22023', 'the user is a member of several tenants', 'no tenant named: refused, saying why');
SELECT pg_temp.login('carol', 'bbbbbbbb-0000-4000-8000-000000000002', 'req-cc-1');
SELECT is((SELECT array_agg(id ORDER BY id) FROM public.cc_controls), '{11,12}'::int[], 'in tenant B: B''s rows only');
SELECT is(crm_security.app_role(), 'client_admin', 'with B''s role');
SELECT lives_ok($$INSERT INTO public.cc_controls VALUES (13, 'bbbbbbbb-0000-4000-8000-000000000002', 'b-3')$$, 'writes in B');
SELECT throws_ok($$INSERT INTO public.cc_controls VALUES (4, 'aaaaaaaa-0000-4000-8000-000000000001', 'a-4')$$, '42501', NULL,
    'but not into A while B is active');
SELECT pg_temp.login('carol', 'aaaaaaaa-0000-4000-8000-000000000001', 'req-cc-2');
SELECT is((SELECT array_agg(id ORDER BY id) FROM public.cc_controls), '{1,2,3}'::int[], 'switched to A: A''s rows only');
SELECT is(crm_security.app_role(), 'client_user', 'with A''s role');
SELECT ok(NOT crm_security.can('crm:users:manage'), 'and A''s permissions');
SELECT lives_ok($$UPDATE public.cc_controls SET name = 'a-1 edited' WHERE id = 1$$, 'writes in A');
SELECT is((SELECT count(*)::int FROM public.cc_controls WHERE id = 13), 0, 'B''s new row is invisible from A');

-- reviewer and superadmin: cross-tenant, as the database role and the context's role say.
RESET ROLE;
SET LOCAL ROLE regress_cc_staff;
SELECT pg_temp.login('rita');
SELECT is(crm_security.app_role(), 'reviewer', 'reviewer: the membership''s role');
SELECT is((SELECT count(*)::int FROM public.cc_controls), 6, 'reviewer reads every tenant');
SELECT is((SELECT count(*)::int FROM crm_security.tenant_members), 6, 'and every membership');
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE q; GET DIAGNOSTICS n = ROW_COUNT; RETURN n::text;
EXCEPTION WHEN OTHERS THEN RETURN 'error ' || SQLSTATE;
END $$;
SELECT ok(pg_temp.try($$UPDATE public.cc_controls SET name = 'x'$$) IN ('0', 'error 42501'), 'reviewer writes nothing');
SELECT pg_temp.login('sam');
SELECT is(crm_security.app_role(), 'superadmin', 'superadmin: the membership''s role');
SELECT ok(crm_security.can('crm:anything:at:all'), 'superadmin holds every permission');
SELECT is(pg_temp.try($$UPDATE public.cc_controls SET name = name WHERE id IN (2, 12)$$), '2', 'superadmin writes in every tenant');
RESET ROLE;

-- A token of the same shape signed by another key is refused.
SELECT throws_ok($$SELECT crm_security.set_claim_context(pg_temp.sb_token('0a000000-0000-4000-8000-00000000000a', 'alice@example.com', (SELECT attacker_jwk FROM sb)))$$,
    '28000', NULL, 'a forged Supabase token is refused');

-- The audit entries carry the active tenant and the request id.
SELECT is((SELECT tenant_id || ' ' || request_id || ' ' || actor_id FROM crm_security.audit_log WHERE table_name LIKE '%cc_controls' AND operation = 'INSERT'),
          'bbbbbbbb-0000-4000-8000-000000000002 req-cc-1 ' || pg_temp.uid('carol'), 'the insert in B is recorded in B, with its request');
SELECT is((SELECT tenant_id || ' ' || request_id FROM crm_security.audit_log WHERE table_name LIKE '%cc_controls' AND operation = 'UPDATE'
            AND actor_id = pg_temp.uid('carol')),
          'aaaaaaaa-0000-4000-8000-000000000001 req-cc-2', 'the update in A is recorded in A');
SELECT is((SELECT count(*)::int FROM crm_security.audit_log WHERE table_name LIKE '%cc_controls' AND operation = 'UPDATE'
            AND actor_id = pg_temp.uid('sam')), 2, 'the superadmin''s updates are recorded');
SELECT is((SELECT tenant_id FROM crm_security.audit_log WHERE table_name LIKE '%cc_controls' AND operation = 'UPDATE'
            AND actor_id = pg_temp.uid('sam') LIMIT 1), '00000000-0000-4000-8000-0000000000ff', 'with the superadmin''s own tenant as actor tenant');

SELECT * FROM finish();
ROLLBACK;
