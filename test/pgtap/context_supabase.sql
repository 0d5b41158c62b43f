-- Supabase and PostgREST compatibility: an ES256 token verified through an imported JWKS
-- makes Supabase's auth.uid(), auth.role(), auth.email() and auth.jwt() return the
-- verified values, and a Supabase-style policy works.
BEGIN;
SELECT plan(23);

-- Supabase's helpers, as Supabase defines them: the single-claim setting first, then the
-- claims object.
CREATE SCHEMA auth;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;
CREATE FUNCTION auth.email() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.email', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$$;
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END $$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;

-- The project's JWKS as /auth/v1/.well-known/jwks.json serves it, pasted as is.
CREATE TEMP TABLE sb AS SELECT
    '{"keys": [{"alg": "ES256", "crv": "P-256", "ext": true, "key_ops": ["verify"], "kid": "sb-0f3c-kid", "kty": "EC", "use": "sig", "x": "Jbi3NUU366K5NA-H5_XfHw3vcUJs2ZiBjQpcwi6IRF8", "y": "QLwm0jVeeHu2s8tfHoQ-kCqsEM5EQFnsWwCfyEuKF0o"}]}'::jsonb AS jwks,
    '{"kty": "EC", "crv": "P-256", "kid": "sb-0f3c-kid", "x": "Jbi3NUU366K5NA-H5_XfHw3vcUJs2ZiBjQpcwi6IRF8", "y": "QLwm0jVeeHu2s8tfHoQ-kCqsEM5EQFnsWwCfyEuKF0o", "d": "MUIgM2BK1OiZLmxIOhp89clCEdPbqQEXBHyb2mD-JgI"}'::jsonb AS private_jwk,
    '{"kty": "EC", "crv": "P-256", "kid": "sb-0f3c-kid", "x": "IGvGKfQ-LwYWOeZh2CTDDVD_on5aYJpDIP5CMh7scPU", "y": "Z1JgOBp8fMdRpyfx_o_tMhCZE5o4HzIphy8Ka4XsEdI", "d": "MDLP_JgTMH5-j-zkxRhqT9XM1PDn7NRNfu6KCc7ECFc"}'::jsonb AS attacker_jwk,
    'https://abcdefgh.supabase.co/auth/v1'::text AS iss,
    '4b1f7c1e-8f2a-4d4e-9c55-3f1e2d9a7b10'::uuid AS alice,
    '9a7e3c55-1d2b-4f7a-8e6c-0b5d4c3a2f19'::uuid AS bob;
GRANT SELECT ON sb TO PUBLIC;

SELECT is(crm_security.import_jwks((SELECT jwks FROM sb), (SELECT iss FROM sb)), 1, 'the Supabase JWKS is imported');

-- A Supabase access token (claims as GoTrue issues them), signed with the private key.
CREATE FUNCTION pg_temp.supabase_token(sub uuid, email text, key jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT crm_security.jwt_sign(jsonb_build_object(
        'iss', (SELECT iss FROM sb), 'sub', sub, 'aud', 'authenticated',
        'exp', extract(epoch FROM now())::bigint + 3600, 'iat', extract(epoch FROM now())::bigint,
        'email', email, 'phone', '', 'role', 'authenticated', 'aal', 'aal1',
        'amr', jsonb_build_array(jsonb_build_object('method', 'password', 'timestamp', extract(epoch FROM now())::bigint)),
        'session_id', 'b3a1c2d4-0000-4000-8000-000000000001', 'is_anonymous', false,
        'app_metadata', jsonb_build_object('provider', 'email', 'providers', jsonb_build_array('email'), 'tenant_id', 'acme'),
        'user_metadata', jsonb_build_object('name', 'Alice')),
        key, 'ES256', NULL)
$$;
CREATE TEMP TABLE sbt AS SELECT
    pg_temp.supabase_token((SELECT alice FROM sb), 'alice@example.com', (SELECT private_jwk FROM sb)) AS alice_tok,
    pg_temp.supabase_token((SELECT bob FROM sb), 'mallory@example.com', (SELECT attacker_jwk FROM sb)) AS forged_tok;
GRANT SELECT ON sbt TO PUBLIC;
SELECT is((crm_security.jwt_decode((SELECT alice_tok FROM sbt))).header->>'kid', 'sb-0f3c-kid', 'the token names the key by kid');

SET LOCAL crm_security.jwt_audience = 'authenticated';
SET LOCAL crm_security.tenant_claim = 'app_metadata.tenant_id';

-- Before any context the helpers return NULL.
SELECT is(auth.uid(), NULL, 'auth.uid() is NULL without a context');

DO $$ BEGIN PERFORM crm_security.set_claim_context((SELECT alice_tok FROM sbt)); END $$;
SELECT is(auth.uid(), (SELECT alice FROM sb), 'auth.uid() returns the verified sub');
SELECT is(auth.role(), 'authenticated', 'auth.role() returns the verified role');
SELECT is(auth.email(), 'alice@example.com', 'auth.email() returns the verified email');
SELECT is(auth.jwt()->>'sub', (SELECT alice FROM sb)::text, 'auth.jwt() returns the verified claims');
SELECT is(auth.jwt()->'app_metadata'->>'provider', 'email', 'auth.jwt() keeps nested claims');
SELECT is(crm_security.user_id(), (SELECT alice FROM sb)::text, 'crm_security.user_id() agrees');
SELECT is(crm_security.tenant_id(), 'acme', 'crm_security.tenant_id() reads app_metadata.tenant_id');
SELECT is(crm_security.claim('user_metadata.name'), 'Alice', 'claim() reads user_metadata');

-- A Supabase-style policy, for the role PostgREST switches to.
CREATE TABLE sb_profiles (id uuid PRIMARY KEY, name text);
INSERT INTO sb_profiles VALUES ((SELECT alice FROM sb), 'Alice'), ((SELECT bob FROM sb), 'Bob');
ALTER TABLE sb_profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users see their own profile" ON sb_profiles FOR SELECT TO authenticated
    USING ((SELECT auth.uid()) = id);
CREATE POLICY "Users update their own profile" ON sb_profiles FOR UPDATE TO authenticated
    USING ((SELECT auth.uid()) = id) WITH CHECK ((SELECT auth.uid()) = id);
GRANT SELECT, UPDATE ON sb_profiles TO authenticated, anon;
GRANT EXECUTE ON FUNCTION auth.uid() TO authenticated, anon;

SET LOCAL ROLE authenticated;
SELECT results_eq('SELECT name FROM sb_profiles', $$VALUES ('Alice')$$, 'the policy using (select auth.uid()) = id admits the own row only');
SELECT results_eq($$WITH u AS (UPDATE sb_profiles SET name = name RETURNING id) SELECT count(*) FROM u$$,
    $$VALUES (1::bigint)$$, 'an update reaches only the own row');
SELECT results_eq('SELECT crm_security.actor_type(), crm_security.user_id()', $$VALUES ('user', '4b1f7c1e-8f2a-4d4e-9c55-3f1e2d9a7b10')$$,
    'the accessors work for the authenticated role');
-- A forged token (another key, same kid) is refused and changes nothing.
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT forged_tok FROM sbt))$$, '28000', 'invalid token',
    'a token signed by another EC key with the project''s kid is refused');
SELECT is(auth.uid(), (SELECT alice FROM sb), 'auth.uid() is unchanged after the refused token');
-- Supabase's helpers trust request.jwt.*; the extension's accessors do not.
DO $$ BEGIN PERFORM set_config('request.jwt.claim.sub', (SELECT bob FROM sb)::text, true); END $$;
SELECT is(crm_security.user_id(), (SELECT alice FROM sb)::text, 'crm_security.user_id() ignores a faked request.jwt.claim.sub');
RESET ROLE;

-- A token for another audience is refused when the audience is configured.
SET LOCAL crm_security.jwt_audience = 'service';
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT alice_tok FROM sbt))$$, '28000', 'invalid token',
    'crm_security.jwt_audience refuses a token for another audience');
RESET crm_security.jwt_audience;
-- The key's issuer is checked.
SELECT throws_ok(format('SELECT crm_security.set_claim_context(%L)',
        crm_security.jwt_sign(jsonb_build_object('sub', (SELECT alice FROM sb), 'iss', 'https://other.supabase.co/auth/v1',
                                                 'exp', extract(epoch FROM now())::bigint + 60),
                              (SELECT private_jwk FROM sb), 'ES256', NULL)),
    '28000', 'invalid token', 'a token of another issuer is refused by the key''s issuer');

-- PostgREST has verified the token already: trust_request_jwt_claims (superuser only).
DO $$ BEGIN PERFORM crm_security.clear_claim_context(); END $$;
DO $$ BEGIN PERFORM set_config('request.jwt.claims', json_build_object('sub', (SELECT bob FROM sb), 'role', 'authenticated',
    'app_metadata', json_build_object('tenant_id', 'globex'))::text, true); END $$;
SELECT is(crm_security.user_id(), NULL, 'request.jwt.claims set by PostgREST is ignored by default');
SET LOCAL crm_security.trust_request_jwt_claims = on;
SELECT is(crm_security.user_id(), (SELECT bob FROM sb)::text, 'with trust_request_jwt_claims it is the context');
SELECT is(crm_security.tenant_id(), 'globex', '... tenant_id() reads it');
SELECT is(crm_security.actor_type(), 'user', '... with actor_type user');

SELECT * FROM finish();
ROLLBACK;
