-- Typed refusals (docs/errors.md): 28000 by default, as API.md says; with
-- crm_security.error_codes = 'specific' one SQLSTATE of class 28 per reason and the reason
-- at the start of the detail; also for refusals of the extension's own contexts (a service
-- token the registry refuses) and of a claim context that is not one.  The Bearer hint.  context_status().  The verification
-- settings functions with hostile input and privileges.
BEGIN;
SELECT plan(75);

\set secret '''je-secret-0123456789-0123456789-abcdefgh'''
SELECT crm_security.add_jwt_key('je_hs', 'HS256', :secret) IS NULL AS added \gset
SELECT crm_security.add_jwt_key('je_off', 'HS256', :secret) IS NULL AS added \gset
SELECT crm_security.disable_jwt_key('je_off') IS NULL AS disabled \gset
SELECT crm_security.add_jwt_key('je_late', 'HS256', :secret, NULL, now() + interval '1 day') IS NULL AS added \gset
CREATE FUNCTION pg_temp.tok(claims jsonb, kid text DEFAULT 'je_hs', secret text DEFAULT 'je-secret-0123456789-0123456789-abcdefgh')
RETURNS text LANGUAGE sql AS $$
    SELECT crm_security.jwt_sign(claims || jsonb_build_object('sub', 'u1'), secret, 'HS256', jsonb_build_object('kid', kid))
$$;
-- The SQLSTATE, the detail and the hint of a refused set_claim_context.
CREATE FUNCTION pg_temp.refusal(tok text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; d text; h text;
BEGIN
    PERFORM crm_security.set_claim_context(tok);
    PERFORM crm_security.clear_claim_context();
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN s || ' ' || coalesce(d, '') || coalesce(' | ' || nullif(h, ''), '');
END $$;
CREATE TEMP TABLE cases (reason text, code text, tok text);
INSERT INTO cases VALUES
  ('expired', '28P16', pg_temp.tok(jsonb_build_object('exp', extract(epoch FROM now())::bigint - 60))),
  ('not_yet_valid', '28P17', pg_temp.tok(jsonb_build_object('nbf', extract(epoch FROM now())::bigint + 600, 'exp', extract(epoch FROM now())::bigint + 900))),
  ('bad_signature', '28P15', pg_temp.tok(jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600), 'je_hs', 'another-secret-0123456789-0123456789-abcd')),
  ('unknown_key', '28P12', pg_temp.tok(jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600), 'je_nobody')),
  ('disabled_key', '28P13', pg_temp.tok(jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600), 'je_off')),
  ('key_not_valid', '28P14', pg_temp.tok(jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600), 'je_late')),
  ('missing_exp', '28P18', pg_temp.tok('{}')),
  ('invalid_claim', '28P1B', pg_temp.tok(jsonb_build_object('exp', 'tomorrow'))),
  ('malformed', '28P10', 'not.a.token'),
  ('algorithm', '28P11', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9.c2ln');

SELECT is((SELECT count(*) FROM cases WHERE pg_temp.refusal(tok) LIKE '28000 %'), 10::bigint,
          'by default every refusal is SQLSTATE 28000 (API.md)');
SELECT is((SELECT count(*) FROM cases WHERE pg_temp.refusal(tok) LIKE '28000 ' || reason || ':%'), 0::bigint,
          '... and the detail is unchanged (no reason prefix)');
SET LOCAL crm_security.error_codes = 'specific';
SELECT is(split_part(pg_temp.refusal(tok), ' ', 1), code, 'specific: ' || reason || ' is ' || code) FROM cases ORDER BY code;
SELECT is(split_part(split_part(pg_temp.refusal(tok), ' ', 2), ':', 1), reason,
          'specific: the detail starts with the reason ' || reason) FROM cases ORDER BY code;
SELECT is((SELECT count(DISTINCT code) FROM cases), 10::bigint, 'ten reasons, ten codes');
SELECT ok((SELECT bool_and(code LIKE '28%' AND code <> '28P01' AND code <> '28000') FROM cases),
          'every code is in class 28 and none is PostgreSQL''s own');

-- audience and issuer, from the key store's settings
SELECT crm_security.set_verification_settings(audience => 'app-b', issuer => 'https://idp.example') IS NULL AS set \gset
SELECT is(pg_temp.refusal(pg_temp.tok(jsonb_build_object('aud', 'app-a', 'iss', 'https://idp.example', 'exp', extract(epoch FROM now())::bigint + 600))),
          '28P19 audience: The token''s audience does not include "app-b".', 'specific: audience is 28P19');
SELECT is(pg_temp.refusal(pg_temp.tok(jsonb_build_object('aud', 'app-b', 'iss', 'https://other.example', 'exp', extract(epoch FROM now())::bigint + 600))),
          '28P1A issuer: The token''s issuer is not the expected issuer.', 'specific: issuer is 28P1A');
SELECT is(pg_temp.refusal(pg_temp.tok(jsonb_build_object('aud', 'app-b', 'iss', 'https://idp.example', 'exp', extract(epoch FROM now())::bigint + 600))),
          'ok', 'a token of the store''s audience and issuer is accepted');
SELECT crm_security.set_verification_settings(leeway => '2 minutes', require_exp => false) IS NULL AS set \gset
SELECT is(pg_temp.refusal(pg_temp.tok(jsonb_build_object('exp', extract(epoch FROM now())::bigint - 60))), 'ok',
          'the store''s leeway applies (expired a minute ago, leeway 2 minutes)');
SELECT is(pg_temp.refusal(pg_temp.tok('{}')), 'ok', 'the store''s require_exp => false applies');
SET LOCAL crm_security.clock_skew = '1 hour';
SELECT matches(pg_temp.refusal(pg_temp.tok(jsonb_build_object('exp', extract(epoch FROM now())::bigint - 600))),
          '^28P16 expired: The token expired at ',
          'a session leeway cannot widen the store''s (expired 10 minutes ago: refused)');
RESET crm_security.clock_skew;
SELECT crm_security.set_key_verification_settings('je_hs', NULL, NULL, '0 seconds', true) IS NULL AS set \gset
SELECT is(pg_temp.refusal(pg_temp.tok('{}')), '28P18 missing_exp: The token has no "exp" claim.', 'a key''s own require_exp takes precedence');
SELECT crm_security.set_key_verification_settings('je_hs') IS NULL AS set \gset
DELETE FROM crm_security.jwt_settings;

-- The Bearer hint
SELECT is(pg_temp.refusal('Bearer ' || pg_temp.tok(jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600))),
          '28P10 malformed: The header is not valid base64url. | The token starts with "Bearer ": pass the token alone, without the scheme of the Authorization header.',
          'a token with the Bearer prefix: a hint says what to do');
-- Every path that refuses a token is typed: an empty or NULL token, and one set directly.
SELECT is(pg_temp.refusal(''), '28P10 malformed: The token is empty.', 'an empty token: 28P10 malformed');
SELECT throws_ok($$SELECT crm_security.set_claim_context(NULL)$$, '28P10', 'invalid token', 'a NULL token: 28P10');
SELECT throws_ok($$SELECT crm_security.jwt_verify(NULL, 'x')$$, '28P10', 'invalid token', '... also for jwt_verify');
SELECT throws_ok($$SET LOCAL crm_security.token = 'not a token'$$, '28P10', 'invalid token',
                 'a token set directly that is not one: 28P10');
CREATE FUNCTION pg_temp.set_refusal(tok text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; d text; h text;
BEGIN
    PERFORM set_config('crm_security.token', tok, true);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN s || ' ' || d || coalesce(' | ' || nullif(h, ''), '');
END $$;
SELECT is(pg_temp.set_refusal('Bearer abc.def.ghi'),
          '28P10 malformed: The token is not three base64url segments. | The token starts with "Bearer ": pass the token alone, without the scheme of the Authorization header.',
          '... with the reason in the detail and the Bearer hint');
RESET crm_security.error_codes;
SELECT is(pg_temp.set_refusal('Bearer abc.def.ghi'),
          '28000 The token is not three base64url segments. | The token starts with "Bearer ": pass the token alone, without the scheme of the Authorization header.',
          '... and 28000 by default');
SELECT ok(pg_temp.refusal('bearer abc.def.ghi') LIKE '28000 % | The token starts with "Bearer "%', '... in any case, with 28000 by default');
SELECT is(pg_temp.refusal('Bearer'), '28000 A compact token has three segments separated by dots; this one has 1.', 'a lone word gets no hint');
SELECT throws_ok($$SET LOCAL crm_security.error_codes = 'loud'$$, '22023', NULL, 'error_codes takes standard or specific');

-- context_status()
SELECT is(crm_security.context_status()->>'status', 'no_context', 'context_status: no context');
CREATE TABLE public.je_items (tenant_id uuid, v int);
SELECT crm_security.enable_tenant_isolation('public.je_items') IS NULL AS isolated \gset
SELECT crm_security.set_claim_context(pg_temp.tok(jsonb_build_object('tenant_id', 'acme', 'exp', extract(epoch FROM now())::bigint + 600))) IS NOT NULL AS set \gset
SELECT is(crm_security.context_status()->>'status', 'tenant_not_castable', 'context_status: a tenant that is not a uuid');
SELECT is(crm_security.context_status()->'not_castable_to', '["uuid"]', '... names the type');
SELECT ok(crm_security.context_status()->>'detail' LIKE 'The tenant "acme" is not a valid uuid%', '... and says so');
SELECT crm_security.set_claim_context(pg_temp.tok(jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600))) IS NOT NULL AS set \gset
SELECT is(crm_security.context_status()->>'status', 'tenant_claim_missing', 'context_status: no tenant claim');
SELECT crm_security.set_claim_context(pg_temp.tok(jsonb_build_object('tenant_id', gen_random_uuid(), 'exp', extract(epoch FROM now())::bigint + 600))) IS NOT NULL AS set \gset
SELECT is(crm_security.context_status()->>'status', 'ok', 'context_status: a uuid tenant is ok');
SELECT is(crm_security.context_status()->>'bypasses_rls', 'true', '... and it says that a superuser bypasses RLS');
SELECT crm_security.clear_claim_context() IS NULL AS cleared \gset

-- The settings functions: hostile input and privileges
SELECT throws_ok($$SELECT crm_security.set_verification_settings(audience => '')$$, '22023', NULL, 'an empty audience is refused');
SELECT throws_ok($$SELECT crm_security.set_verification_settings(audience => repeat('a', 100000))$$, '22023', NULL, 'a huge audience is refused');
SELECT throws_ok($$SELECT crm_security.set_verification_settings(issuer => '')$$, '22023', NULL, 'an empty issuer is refused');
SELECT throws_ok($$SELECT crm_security.set_verification_settings(leeway => '-1 second')$$, '22023', NULL, 'a negative leeway is refused');
SELECT throws_ok($$SELECT crm_security.set_verification_settings(leeway => '1 year')$$, '22023', NULL, 'a leeway over a day is refused');
SELECT lives_ok($$SELECT crm_security.set_verification_settings(NULL, NULL, NULL, NULL)$$, 'all NULL: nothing set');
SELECT is((SELECT count(*) FROM crm_security.jwt_settings WHERE audience IS NULL AND issuer IS NULL AND leeway IS NULL AND require_exp IS NULL), 1::bigint, '... one row, all unset');
SELECT throws_ok($$SELECT crm_security.set_key_verification_settings(NULL)$$, '22023', NULL, 'a NULL kid is refused');
SELECT throws_ok($$SELECT crm_security.set_key_verification_settings('je_nobody', NULL, 'x')$$, '42704', NULL, 'an unknown key is refused');
SELECT throws_ok($$SELECT crm_security.set_key_verification_settings('je_hs', NULL, repeat('a', 2000))$$, '22023', NULL, 'a huge key audience is refused');
SELECT throws_ok($$SELECT crm_security.set_key_verification_settings('crm_security.internal', 'crm_security:internal', 'x')$$, NULL, NULL,
                 'the extension''s own key has no settings of the store');
SELECT is((SELECT count(*) FROM crm_security.security_events WHERE event_type = 'jwt.verification_settings_changed'), 5::bigint,
          'every change of the settings is a security event');
CREATE ROLE regress_je_user;
SET LOCAL ROLE regress_je_user;
SELECT throws_ok($$SELECT crm_security.set_verification_settings(audience => 'x')$$, '42501', NULL, 'a role that is not a key administrator cannot set them');
SELECT throws_ok($$SELECT crm_security.set_key_verification_settings('je_hs', NULL, 'x')$$, '42501', NULL, '... nor a key''s');
SELECT throws_ok($$SELECT * FROM crm_security.verification_settings()$$, '42501', NULL, '... nor read them');
SELECT lives_ok($$SET LOCAL crm_security.error_codes = 'specific'$$, 'any role may choose specific error codes');
RESET ROLE;
SELECT is((SELECT count(*) FROM crm_security.verification_settings() WHERE scope = 'default'), 1::bigint, 'verification_settings() shows the default row');

-- Refusals of the extension's own contexts: a service token the registry refuses ("service")
SELECT 1 AS r FROM crm_security.register_service('jebilling', '{jecrm}') \gset
SELECT 1 AS r FROM crm_security.register_service('jecrm') \gset
SELECT crm_security.issue_service_token('jebilling', 'jecrm') AS stok \gset
SELECT is(pg_temp.refusal(:'stok'), 'ok', 'a service token of a registered call gives a context');
SELECT 1 AS r FROM crm_security.set_service_enabled('jebilling', false) \gset
SET LOCAL crm_security.error_codes = 'standard';
SELECT is(pg_temp.refusal(:'stok'), '28000 The service is disabled in service_registry.',
          'a service the registry disabled: 28000 by default');
SET LOCAL crm_security.error_codes = 'specific';
SELECT is(pg_temp.refusal(:'stok'), '28P1D service: The service is disabled in service_registry.',
          'specific: a service the registry refuses is 28P1D, reason service');
SELECT 1 AS r FROM crm_security.set_service_enabled('jebilling', true) \gset
SELECT 1 AS r FROM crm_security.deny_service_call('jebilling', 'jecrm') \gset
SELECT is(pg_temp.refusal(:'stok'), '28P1D service: The registry does not let the service call the audience.',
          'specific: a call the registry no longer allows is 28P1D too');
SET LOCAL crm_security.service_audience = 'jeother';
SELECT 1 AS r FROM crm_security.allow_service_call('jebilling', 'jecrm') \gset
SELECT is(pg_temp.refusal(:'stok'), '28P1D service: The service token''s audience is not crm_security.service_audience.',
          'specific: a service token for another database is 28P1D');
RESET crm_security.service_audience;
SELECT is(pg_temp.refusal(:'stok'), 'ok', '... and the same token gives a context once allowed again');

-- An invalid claim context ("invalid_context"): request.jwt.claims in trust mode
CREATE FUNCTION pg_temp.claims_refusal(claims text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; m text; d text;
BEGIN
    PERFORM set_config('request.jwt.claims', claims, true);
    PERFORM crm_security.user_id();
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
    RETURN s || ' ' || m || ' | ' || coalesce(d, '');
END $$;
SET LOCAL crm_security.trust_request_jwt_claims = on;
SELECT is(pg_temp.claims_refusal('[1, 2]'), '28P1E invalid claim context | invalid_context: request.jwt.claims is not a JSON object.',
          'specific: request.jwt.claims that is not an object is 28P1E, reason invalid_context');
SELECT is(pg_temp.claims_refusal('{"sub": '), '28P1E invalid claim context | invalid_context: request.jwt.claims is not valid JSON.',
          'specific: request.jwt.claims that is not JSON is 28P1E');
SET LOCAL crm_security.error_codes = 'standard';
SELECT is(pg_temp.claims_refusal('"x"'), '28000 invalid claim context | request.jwt.claims is not a JSON object.',
          '... and 28000 with the detail unchanged by default');
SELECT is(pg_temp.claims_refusal('{"sub": "u1"}'), 'ok', 'an object in request.jwt.claims is a context in trust mode');
RESET crm_security.trust_request_jwt_claims;
RESET crm_security.error_codes;

SELECT * FROM finish();
ROLLBACK;
DROP ROLE IF EXISTS regress_je_user;
