-- Claim context: set_claim_context, the accessors, the settings and hostile tokens.
BEGIN;
SELECT plan(119);

CREATE ROLE regress_cx_user;

-- Tokens for the tests, signed here.  Every token gets exp = now + 10 minutes unless the
-- claims say otherwise.
CREATE FUNCTION pg_temp.sign(claims jsonb, secret text, header jsonb DEFAULT '{"kid": "cx_hs"}', alg text DEFAULT 'HS256')
RETURNS text LANGUAGE sql AS $$
    SELECT crm_security.jwt_sign(
        jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600) || claims,
        secret, alg, header)
$$;
CREATE FUNCTION pg_temp.b64url(t text) RETURNS text LANGUAGE sql AS $$
    SELECT rtrim(translate(encode(convert_to(t, 'UTF8'), 'base64'), E'+/\n', '-_'), '=')
$$;
CREATE TEMP TABLE tk(name text PRIMARY KEY, tok text);
GRANT SELECT ON tk TO PUBLIC;

\set secret '''cx-secret-0123456789-0123456789-abcdef'''
\set secret2 '''cx-second-secret-0123456789-0123456789'''
\set claims1 '''{"sub": "user-1", "tenant_id": "tenant-1", "role": "manager", "email": "u1@example.com", "app_metadata": {"tenant_id": "tenant-9", "plan": {"tier": "gold"}}, "roles": ["a", "b"], "n": 42, "flag": true, "obj": {"x": 1}, "nul": null, "https://example.com/roles": ["x"]}'''

INSERT INTO tk VALUES
  ('ok', pg_temp.sign(:claims1, :secret)),
  ('ok2', pg_temp.sign('{"sub": "user-2", "tenant_id": "tenant-2"}', :secret)),
  ('nokid', pg_temp.sign('{"sub": "user-3", "tenant_id": "tenant-3"}', :secret2, NULL)),
  ('forged', pg_temp.sign('{"sub": "user-1", "tenant_id": "tenant-evil"}', 'a-guessed-secret-0123456789-0123456789')),
  ('expired', pg_temp.sign(jsonb_build_object('sub', 'user-1', 'exp', extract(epoch FROM now())::bigint - 10), :secret)),
  ('expired_long', pg_temp.sign(jsonb_build_object('sub', 'user-1', 'exp', extract(epoch FROM now())::bigint - 3600), :secret)),
  ('future', pg_temp.sign(jsonb_build_object('sub', 'user-1', 'nbf', extract(epoch FROM now())::bigint + 3600), :secret)),
  ('noexp', crm_security.jwt_sign('{"sub": "user-1"}', :secret, 'HS256', '{"kid": "cx_hs"}')),
  ('aud', pg_temp.sign('{"sub": "user-1", "aud": ["api", "other"]}', :secret)),
  ('iss', pg_temp.sign('{"sub": "user-1", "iss": "https://issuer.example"}', :secret)),
  ('unknown_kid', pg_temp.sign('{"sub": "user-1"}', :secret, '{"kid": "cx_nope"}')),
  ('disabled', pg_temp.sign('{"sub": "user-1"}', 'cx-disabled-0123456789-0123456789-abc', '{"kid": "cx_disabled"}')),
  ('expired_key', pg_temp.sign('{"sub": "user-1"}', 'cx-expired-0123456789-0123456789-abcd', '{"kid": "cx_expired_key"}')),
  ('future_key', pg_temp.sign('{"sub": "user-1"}', 'cx-future-0123456789-0123456789-abcde', '{"kid": "cx_future_key"}')),
  ('keyiss_ok', pg_temp.sign('{"sub": "user-1", "iss": "https://idp.example"}', 'cx-issuer-0123456789-0123456789-abcde', '{"kid": "cx_iss"}')),
  ('keyiss_bad', pg_temp.sign('{"sub": "user-1", "iss": "https://evil.example"}', 'cx-issuer-0123456789-0123456789-abcde', '{"kid": "cx_iss"}')),
  ('keyiss_none', pg_temp.sign('{"sub": "user-1"}', 'cx-issuer-0123456789-0123456789-abcde', '{"kid": "cx_iss"}')),
  ('hs384_kid', pg_temp.sign('{"sub": "user-1"}', :secret, '{"kid": "cx_hs"}', 'HS384')),
  ('alg_none', pg_temp.b64url('{"alg":"none","kid":"cx_hs"}') || '.' ||
               pg_temp.b64url('{"sub":"user-1","tenant_id":"tenant-evil","exp":4102444800}') || '.'),
  ('alg_none_sig', pg_temp.b64url('{"alg":"none"}') || '.' ||
               pg_temp.b64url('{"sub":"user-1","exp":4102444800}') || '.c2ln'),
  ('bad_header', 'e30.' || pg_temp.b64url('{"sub":"user-1"}') || '.c2ln'),
  ('json_header', pg_temp.b64url('[1]') || '.e30.c2ln'),
  ('huge', repeat('a', 70000) || '.e30.c2ln');

-- The RSA public key PEM that the key store trusts for RS256, and an HS256 token whose
-- HMAC secret is that PEM text: the classic algorithm confusion.
INSERT INTO tk VALUES ('rsa_pem', '-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA6jRCMkyPWeaJvfyt4mlH
mdJ/PJxxGRIZMHolcCCqK013dzfzMUsLVLPj8OqcGolQilVVN/QEetXNN0cgRs/O
uc56NYWEkxLM2iz+MCc7LFSLgHknhGntO+MLOX2yOHQ4cIad62fH93phZxmmD1DK
9EBUPMWBMZd/yHUX9yFZCSWXoweGp3khgf4nl6jRw23Ysucb/kdH2QOZLprGsk1r
bpzeSjizKBFRSHJh7FeoR2lejTvfFIHDpo/GNSMHGE2ymqEK0AcLa4Z9LL3ZokGP
q9/9rQJYDeP58+qgpz0fwbYYGT0rYXD9fqRcvOGosoV+sdKqD5+jKP3Yt0q2Bpj7
bwIDAQAB
-----END PUBLIC KEY-----
');
-- jwt_sign refuses an RSA key as an HMAC secret, so sign by hand with the raw HMAC.
CREATE FUNCTION pg_temp.hs256_raw(header text, payload text, secret text) RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.b64url(header) || '.' || pg_temp.b64url(payload) || '.' ||
           rtrim(translate(encode(crm_security.hmac(convert_to(pg_temp.b64url(header) || '.' || pg_temp.b64url(payload), 'UTF8'),
                                                     convert_to(secret, 'UTF8'), 'sha256'), 'base64'), E'+/\n', '-_'), '=')
$$;
INSERT INTO tk SELECT 'confusion_kid', pg_temp.hs256_raw('{"alg":"HS256","kid":"cx_rs"}',
    '{"sub":"user-1","tenant_id":"tenant-evil","exp":4102444800}', tok) FROM tk WHERE name = 'rsa_pem';
INSERT INTO tk SELECT 'confusion_nokid', pg_temp.hs256_raw('{"alg":"HS256"}',
    '{"sub":"user-1","tenant_id":"tenant-evil","exp":4102444800}', tok) FROM tk WHERE name = 'rsa_pem';
-- The same construction with the real secret verifies: the raw signer is right.
INSERT INTO tk VALUES ('raw_ok', pg_temp.hs256_raw('{"alg":"HS256","kid":"cx_hs"}',
    '{"sub":"user-raw","exp":4102444800}', :secret));

-- No context at first.
SELECT is(crm_security.claims(), NULL, 'no context: claims() is NULL');
SELECT is(crm_security.user_id(), NULL, 'no context: user_id() is NULL');
SELECT is(crm_security.tenant_id(), NULL, 'no context: tenant_id() is NULL');
SELECT is(crm_security.app_role(), NULL, 'no context: app_role() is NULL');
SELECT is(crm_security.actor_type(), NULL, 'no context: actor_type() is NULL');
SELECT is(crm_security.claim('sub'), NULL, 'no context: claim() is NULL');

-- The key store.
SELECT crm_security.add_jwt_key('cx_hs', 'HS256', :secret);
SELECT crm_security.add_jwt_key('cx_hs_b', 'HS256', :secret2);
SELECT crm_security.add_jwt_key('cx_rs', 'RS256', (SELECT tok FROM tk WHERE name = 'rsa_pem'));
SELECT crm_security.add_jwt_key('cx_disabled', 'HS256', 'cx-disabled-0123456789-0123456789-abc');
SELECT crm_security.disable_jwt_key('cx_disabled');
SELECT crm_security.add_jwt_key('cx_expired_key', 'HS256', 'cx-expired-0123456789-0123456789-abcd', NULL,
                                now() - interval '2 days', now() - interval '1 day');
SELECT crm_security.add_jwt_key('cx_future_key', 'HS256', 'cx-future-0123456789-0123456789-abcde', NULL,
                                now() + interval '1 day', NULL);
SELECT crm_security.add_jwt_key('cx_iss', 'HS256', 'cx-issuer-0123456789-0123456789-abcde', 'https://idp.example');

-- A verified context.
SELECT is(crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'ok')) - 'exp', (:claims1)::jsonb,
    'set_claim_context returns the claims');
SELECT is(crm_security.claims() - 'exp', (:claims1)::jsonb, 'claims() returns them');
SELECT is(crm_security.user_id(), 'user-1', 'user_id() is sub');
SELECT is(crm_security.tenant_id(), 'tenant-1', 'tenant_id() is the tenant_id claim');
SELECT is(crm_security.app_role(), 'manager', 'app_role() is the role claim');
SELECT is(crm_security.actor_type(), 'user', 'actor_type() is user');
SELECT is(crm_security.claim('email'), 'u1@example.com', 'claim() of a string');
SELECT is(crm_security.claim('app_metadata.tenant_id'), 'tenant-9', 'claim() follows a dotted path');
SELECT is(crm_security.claim('app_metadata.plan.tier'), 'gold', 'claim() follows a deeper path');
SELECT is(crm_security.claim('roles.1'), 'b', 'claim() indexes an array');
SELECT is(crm_security.claim('roles'), '["a", "b"]', 'claim() of an array is JSON');
SELECT is(crm_security.claim('obj'), '{"x": 1}', 'claim() of an object is JSON');
SELECT is(crm_security.claim('n'), '42', 'claim() of a number');
SELECT is(crm_security.claim('flag'), 'true', 'claim() of a boolean');
SELECT is(crm_security.claim('nul'), NULL, 'claim() of JSON null is NULL');
SELECT is(crm_security.claim('missing'), NULL, 'claim() of a missing claim is NULL');
SELECT is(crm_security.claim('email.x.y'), NULL, 'claim() through a string is NULL');
SELECT is(crm_security.claim('roles.7'), NULL, 'claim() past the end of an array is NULL');
SELECT is(crm_security.claim('https://example.com/roles'), '["x"]', 'a member named by the whole path wins');
SELECT is(crm_security.claim(NULL), NULL, 'claim(NULL) is NULL');
SELECT throws_ok($$SELECT crm_security.claim('')$$, '22023', 'invalid claim path', 'claim('''') raises');
SELECT throws_ok($$SELECT crm_security.claim('app_metadata..tenant_id')$$, '22023', 'invalid claim path', 'an empty path segment raises');
SELECT throws_ok($$SELECT crm_security.claim('.sub')$$, '22023', 'invalid claim path', 'a leading dot raises');

-- Supabase / PostgREST compatibility settings.
SELECT is(current_setting('request.jwt.claims')::jsonb - 'exp', (:claims1)::jsonb, 'request.jwt.claims holds the verified claims');
SELECT is(current_setting('request.jwt.claim.sub'), 'user-1', 'request.jwt.claim.sub');
SELECT is(current_setting('request.jwt.claim.role'), 'manager', 'request.jwt.claim.role');
SELECT is(current_setting('request.jwt.claim.email'), 'u1@example.com', 'request.jwt.claim.email');

-- The settings that name claims.
SET LOCAL crm_security.tenant_claim = 'app_metadata.tenant_id';
SELECT is(crm_security.tenant_id(), 'tenant-9', 'crm_security.tenant_claim may be a dotted path');
SET LOCAL crm_security.role_claim = 'email';
SELECT is(crm_security.app_role(), 'u1@example.com', 'crm_security.role_claim picks the claim');
RESET crm_security.tenant_claim;
RESET crm_security.role_claim;
SELECT is(current_setting('crm_security.permissions_claim'), 'permissions', 'crm_security.permissions_claim defaults to permissions');
SELECT throws_ok($$SET LOCAL crm_security.tenant_claim = ''$$, '22023', NULL, 'an empty tenant_claim is refused');
SELECT throws_ok($$SET LOCAL crm_security.tenant_claim = 'a..b'$$, '22023', NULL, 'a tenant_claim with an empty segment is refused');

-- Another token replaces the context; a refused token leaves it as it was.
SELECT is(crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'ok2'))->>'sub', 'user-2', 'a second token replaces the context');
SELECT is(crm_security.tenant_id(), 'tenant-2', '... and tenant_id() follows');
SELECT is(current_setting('request.jwt.claim.email'), '', '... and request.jwt.claim.email is emptied');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'forged'))$$,
    '28000', 'invalid token', 'a token signed with another secret is refused');
SELECT is(crm_security.tenant_id(), 'tenant-2', 'a refused token leaves the context unchanged');
SELECT is(crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'nokid'))->>'sub', 'user-3',
    'a token without kid is verified by the enabled keys of its algorithm');
SELECT is(crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'raw_ok'))->>'sub', 'user-raw',
    'a token signed with the raw HMAC verifies');

-- Hostile and invalid tokens: all 28000.
SELECT throws_ok($$SELECT crm_security.set_claim_context(NULL)$$, '28000', 'invalid token', 'NULL token');
SELECT throws_ok($$SELECT crm_security.set_claim_context('')$$, '28000', 'invalid token', 'empty token');
SELECT throws_ok($$SELECT crm_security.set_claim_context('not a token')$$, '28000', 'invalid token', 'garbage');
SELECT throws_ok($$SELECT crm_security.set_claim_context('a.b')$$, '28000', 'invalid token', 'two segments');
SELECT throws_ok($$SELECT crm_security.set_claim_context('a.b.c.d')$$, '28000', 'invalid token', 'four segments');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'bad_header'))$$, '28000', 'invalid token', 'a header without alg');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'json_header'))$$, '28000', 'invalid token', 'a header that is not an object');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'huge'))$$, '28000', 'invalid token', 'an oversized token');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'alg_none'))$$, '28000', 'invalid token', 'alg none with an empty signature');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'alg_none_sig'))$$, '28000', 'invalid token', 'alg none with a signature');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'expired'))$$, '28000', 'invalid token', 'an expired token');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'future'))$$, '28000', 'invalid token', 'a token not yet valid (nbf)');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'noexp'))$$, '28000', 'invalid token', 'a token without exp (require_exp is on)');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'unknown_kid'))$$, '28000', 'invalid token', 'an unknown kid');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'disabled'))$$, '28000', 'invalid token', 'a disabled key');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'expired_key'))$$, '28000', 'invalid token', 'a key past its not_after');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'future_key'))$$, '28000', 'invalid token', 'a key before its not_before');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'hs384_kid'))$$, '28000', 'invalid token', 'a token whose alg is not its key''s algorithm');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'confusion_kid'))$$, '28000', 'invalid token',
    'HS256 signed with the RSA public key PEM, kid of the RSA key: refused');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'confusion_nokid'))$$, '28000', 'invalid token',
    'HS256 signed with the RSA public key PEM, no kid: refused');
SELECT is(crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'keyiss_ok'))->>'iss', 'https://idp.example', 'a key''s issuer accepts its tokens');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'keyiss_bad'))$$, '28000', 'invalid token', 'a key''s issuer refuses another iss');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'keyiss_none'))$$, '28000', 'invalid token', 'a key''s issuer refuses a token without iss');

-- Every one-character mutation of a valid token, and random garbage, is refused with 28000.
CREATE FUNCTION pg_temp.refused(t text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm_security.set_claim_context(t);
    RETURN false;
EXCEPTION WHEN invalid_authorization_specification THEN
    RETURN true;
END $$;
CREATE FUNCTION pg_temp.mutate(t text, pos int, c text) RETURNS text LANGUAGE sql AS $$
    SELECT overlay(t placing (CASE WHEN substr(t, pos, 1) = c THEN CASE WHEN c = 'A' THEN 'B' ELSE 'A' END ELSE c END) from pos for 1)
$$;
SELECT is((SELECT count(*) FROM (SELECT tok FROM tk WHERE name = 'ok') v, generate_series(1, length(v.tok)) AS pos
            WHERE NOT pg_temp.refused(pg_temp.mutate(v.tok, pos, substr('AQgw-_.z9', 1 + pos % 9, 1)))),
    0::bigint, 'every one-character change of a valid token is refused');
SELECT is((SELECT count(*) FROM generate_series(1, 300) AS g
            WHERE NOT pg_temp.refused(
                (SELECT string_agg(substr('ABCxyz019-_.', 1 + (random() * 11)::int, 1), '')
                   FROM generate_series(1, 1 + (random() * 200)::int) WHERE g > 0))),
    0::bigint, 'random strings of token characters are refused');
SELECT is(crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'ok'))->>'sub', 'user-1', 'the unmutated token still verifies');

-- Verification settings.
SET LOCAL crm_security.require_exp = off;
SELECT is(crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'noexp'))->>'sub', 'user-1', 'require_exp off accepts a token without exp');
RESET crm_security.require_exp;
SET LOCAL crm_security.clock_skew = 30;
SELECT is(crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'expired'))->>'sub', 'user-1', 'clock_skew 30 s accepts a token expired 10 s ago');
SET LOCAL crm_security.clock_skew = '1min';
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'expired_long'))$$, '28000', 'invalid token', 'clock_skew 1min still refuses a token expired an hour ago');
SET LOCAL crm_security.clock_skew = '30 seconds';
SELECT is(crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'expired'))->>'sub', 'user-1', 'clock_skew as an interval');
SET LOCAL crm_security.clock_skew = 'PT30S';
SELECT is(crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'expired'))->>'sub', 'user-1', 'clock_skew as an ISO 8601 duration');
SET LOCAL crm_security.clock_skew = '5';
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'expired'))$$, '28000', 'invalid token', 'clock_skew 5 s refuses a token expired 10 s ago');
SELECT throws_ok($$SET LOCAL crm_security.clock_skew = 'soon'$$, '22023', NULL, 'a clock_skew that is not an interval is refused');
SELECT throws_ok($$SET LOCAL crm_security.clock_skew = '-5'$$, '22023', NULL, 'a negative clock_skew is refused');
SELECT throws_ok($$SET LOCAL crm_security.clock_skew = '2 days'$$, '22023', NULL, 'a clock_skew over one day is refused');
SELECT throws_ok($$SET LOCAL crm_security.clock_skew = '1 mon'$$, '22023', NULL, 'a clock_skew in months is refused');
RESET crm_security.clock_skew;
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'expired'))$$, '28000', 'invalid token', 'without clock_skew the same token is refused');
SET LOCAL crm_security.jwt_audience = 'api';
SELECT is(crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'aud'))->>'sub', 'user-1', 'jwt_audience accepts a token for it');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'ok'))$$, '28000', 'invalid token', 'jwt_audience refuses a token without aud');
SET LOCAL crm_security.jwt_audience = 'web';
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'aud'))$$, '28000', 'invalid token', 'jwt_audience refuses a token for another audience');
RESET crm_security.jwt_audience;
SET LOCAL crm_security.jwt_issuer = 'https://issuer.example';
SELECT is(crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'iss'))->>'sub', 'user-1', 'jwt_issuer accepts its tokens');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'ok'))$$, '28000', 'invalid token', 'jwt_issuer refuses a token without iss');
RESET crm_security.jwt_issuer;
-- A change of the verification settings re-verifies the token in the setting.
DO $$ BEGIN PERFORM crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'ok')); END $$;
SET LOCAL crm_security.jwt_issuer = 'https://issuer.example';
SELECT throws_ok($$SELECT crm_security.user_id()$$, '28000', 'invalid token', 'the context is checked again when the verification settings change');
RESET crm_security.jwt_issuer;
SELECT is(crm_security.user_id(), 'user-1', '... and holds again when they change back');

-- Spoofing, as a role that is not superuser.
DO $$ BEGIN PERFORM crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'ok2')); END $$;
SET LOCAL ROLE regress_cx_user;
SELECT is(crm_security.tenant_id(), 'tenant-2', 'a non-superuser reads the context');
DO $$ BEGIN PERFORM set_config('request.jwt.claims', '{"sub": "evil", "tenant_id": "tenant-evil"}', true); END $$;
DO $$ BEGIN PERFORM set_config('request.jwt.claim.sub', 'evil', true); END $$;
SELECT is(crm_security.tenant_id(), 'tenant-2', 'faking request.jwt.claims does not change tenant_id()');
SELECT is(crm_security.user_id(), 'user-2', 'faking request.jwt.claim.sub does not change user_id()');
SELECT throws_ok($$SELECT set_config('crm_security.token', 'forged', true)$$, '28000', 'invalid token', 'set_config of a non-token is refused');
SELECT throws_ok($$SHOW crm_security.token$$, '42501', NULL, 'a non-superuser cannot read the token');
SELECT throws_ok($$SET LOCAL crm_security.trust_request_jwt_claims = on$$, '42501', NULL, 'a non-superuser cannot trust request.jwt.claims');
SELECT throws_ok($$SET LOCAL crm_security.tenant_claim = 'sub'$$, '42501', NULL, 'a non-superuser cannot redirect tenant_id()');
SELECT throws_ok($$SET LOCAL crm_security.require_exp = off$$, '42501', NULL, 'a non-superuser cannot relax require_exp');
SELECT throws_ok($$ALTER ROLE regress_cx_user SET crm_security.token = 'a.b.c'$$, '42501', NULL, 'ALTER ROLE ... SET crm_security.token is refused');
RESET ROLE;
SELECT throws_ok($$ALTER ROLE regress_cx_user SET crm_security.token = 'a.b.c'$$, '42501', NULL, 'ALTER ROLE ... SET crm_security.token is refused for a superuser too');
SELECT throws_ok(format('ALTER DATABASE %I SET crm_security.token = %L', current_database(), 'a.b.c'), '42501', NULL, 'ALTER DATABASE ... SET crm_security.token is refused');
SET LOCAL ROLE regress_cx_user;
-- A forged token put into the setting directly is never a context.
SET LOCAL crm_security.token = 'eyJhbGciOiJIUzI1NiIsImtpZCI6ImN4X2hzIn0.eyJzdWIiOiJldmlsIiwidGVuYW50X2lkIjoidGVuYW50LWV2aWwifQ.c2lnbmF0dXJl';
SELECT throws_ok($$SELECT crm_security.tenant_id()$$, '28000', 'invalid token', 'SET LOCAL of a forged token: the accessors refuse it');
SELECT throws_ok($$SELECT crm_security.claims()$$, '28000', 'invalid token', '... claims() too');
SELECT throws_ok($$SELECT set_config('crm_security.token', (SELECT tok FROM tk WHERE name = 'ok'), true)$$, '42501', NULL,
    'set_config by a non-superuser fails (it would have to show the token) and sets nothing');
SELECT throws_ok($$SELECT crm_security.tenant_id()$$, '28000', 'invalid token', '... the forged token is still there and still refused');
DO $$ BEGIN EXECUTE format('SET LOCAL crm_security.token = %L', (SELECT tok FROM tk WHERE name = 'forged')); END $$;
SELECT throws_ok($$SELECT crm_security.tenant_id()$$, '28000', 'invalid token', 'SET LOCAL of a token signed with a wrong secret: refused');
-- A token that verifies gives what set_claim_context gives, no more.
DO $$ BEGIN EXECUTE format('SET LOCAL crm_security.token = %L', (SELECT tok FROM tk WHERE name = 'ok')); END $$;
SELECT is(crm_security.tenant_id(), 'tenant-1', 'SET LOCAL of a token that verifies gives its own claims');
SELECT is(current_setting('request.jwt.claim.sub', true), 'evil', '... (request.jwt.* are only set by set_claim_context)');
RESET crm_security.token;
SELECT is(crm_security.claims(), NULL, 'RESET drops the context');
RESET ROLE;

-- trust_request_jwt_claims: only when a superuser turns it on.
DO $$ BEGIN PERFORM set_config('request.jwt.claims', '{"sub": "pgrst-user", "tenant_id": "tenant-pgrst"}', true); END $$;
SELECT is(crm_security.tenant_id(), NULL, 'request.jwt.claims is never read by default');
SET LOCAL crm_security.trust_request_jwt_claims = on;
SELECT is(crm_security.tenant_id(), 'tenant-pgrst', 'trust_request_jwt_claims on: request.jwt.claims is the context');
SELECT is(crm_security.actor_type(), 'user', '... with actor_type user');
DO $$ BEGIN PERFORM set_config('request.jwt.claims', 'not json', true); END $$;
SELECT throws_ok($$SELECT crm_security.claims()$$, '28000', 'invalid claim context', '... and malformed request.jwt.claims raise');
DO $$ BEGIN PERFORM crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'ok2')); END $$;
SELECT is(crm_security.tenant_id(), 'tenant-2', 'a verified token wins over request.jwt.claims');
RESET crm_security.trust_request_jwt_claims;

-- clear_claim_context and savepoints.
SAVEPOINT s1;
DO $$ BEGIN PERFORM crm_security.clear_claim_context(); END $$;
SELECT is(crm_security.claims(), NULL, 'clear_claim_context drops the context');
SELECT is(current_setting('request.jwt.claims'), '', '... and request.jwt.claims');
ROLLBACK TO SAVEPOINT s1;
SELECT is(crm_security.tenant_id(), 'tenant-2', 'rolling back to a savepoint restores the context');
SAVEPOINT s2;
DO $$ BEGIN PERFORM crm_security.set_claim_context((SELECT tok FROM tk WHERE name = 'ok')); END $$;
SELECT is(crm_security.tenant_id(), 'tenant-1', 'a context set after a savepoint ...');
ROLLBACK TO SAVEPOINT s2;
SELECT is(crm_security.tenant_id(), 'tenant-2', '... is rolled back with it');
SELECT is(current_setting('request.jwt.claim.sub'), 'user-2', '... and so are the request.jwt settings');

SELECT * FROM finish();
ROLLBACK;
