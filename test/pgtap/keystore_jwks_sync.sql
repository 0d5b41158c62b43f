-- import_jwks(jwks, issuer, disable_missing): a key the identity provider dropped is
-- disabled (not deleted), only among the keys of that issuer, never the extension's own key;
-- refused without an issuer or with a set that has no signature key.  Every key change
-- (add_jwt_key, import_jwks, disable_jwt_key) is a security event jwt.key_<action> that
-- names the key and never its material.  NULL, empty, huge and hostile JWKS; privileges.
SET client_min_messages = warning;
BEGIN;
SELECT plan(52);

\ir include/err.sql

-- An HS256 key as an "oct" JWK, and a token it verifies.
CREATE FUNCTION pg_temp.jwk(kid text, secret text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('kty', 'oct', 'alg', 'HS256', 'use', 'sig', 'kid', kid,
        'k', rtrim(translate(replace(encode(convert_to(secret, 'UTF8'), 'base64'), E'\n', ''), '+/', '-_'), '='))
$$;
CREATE FUNCTION pg_temp.jwks(VARIADIC members jsonb[]) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('keys', coalesce((SELECT jsonb_agg(m) FROM unnest(members) AS m), '[]'))
$$;
CREATE FUNCTION pg_temp.tok(kid text, secret text, iss text) RETURNS text LANGUAGE sql AS $$
    SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'u-' || kid, 'iss', iss,
               'exp', extract(epoch FROM now())::bigint + 600), secret, 'HS256', jsonb_build_object('kid', kid))
$$;
CREATE FUNCTION pg_temp.verifies(tok text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text;
BEGIN
    PERFORM crm_security.set_claim_context(tok);
    PERFORM crm_security.clear_claim_context();
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE;
    RETURN s;
END $$;
CREATE FUNCTION pg_temp.enabled(kid text, iss text) RETURNS boolean LANGUAGE sql AS $$
    SELECT k.enabled FROM crm_security.jwt_keys AS k WHERE k.kid = $1 AND k.issuer IS NOT DISTINCT FROM $2
$$;
CREATE FUNCTION pg_temp.events(type text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM crm_security.security_events WHERE event_type = type
$$;

\set sa '''secret-of-key-a-0123456789-0123456789'''
\set sb '''secret-of-key-b-0123456789-0123456789'''
\set sx '''secret-of-other-0123456789-0123456789'''
\set ia '''https://idp-a.example'''
\set ib '''https://idp-b.example'''

-- The extension's own key exists (a service token is signed with it).
SELECT 1 AS r FROM crm_security.register_service('jssvc', '{jssvc}') \gset
SELECT length(crm_security.issue_service_token('jssvc', 'jssvc')) > 0 AS issued \gset

-- 1. Rotation: key A, then the provider publishes {B}
SELECT is(crm_security.import_jwks(pg_temp.jwks(pg_temp.jwk('k-a', :sa)), :ia), 1,
          'the two-argument import_jwks still returns the number imported');
-- Another issuer with the same kid and a key of its own; a key without issuer.
SELECT is(crm_security.import_jwks(pg_temp.jwks(pg_temp.jwk('k-a', :sx), pg_temp.jwk('k-x', :sx)), :ib), 2,
          'another issuer''s JWKS, one of its kids shared with the first issuer');
SELECT lives_ok(format('SELECT crm_security.add_jwt_key(%L, %L, %L)', 'k-none', 'HS256', :sx), 'a key without issuer');
SELECT is(pg_temp.verifies(pg_temp.tok('k-a', :sa, :ia)), 'ok', 'a token of key A verifies before the rotation');

SELECT results_eq(format('SELECT imported, disabled, disabled_kids FROM crm_security.import_jwks(%L, %L, true)',
                         pg_temp.jwks(pg_temp.jwk('k-b', :sb)), :ia),
                  $$VALUES (1, 1, ARRAY['k-a'])$$,
                  'import_jwks({B}, issuer, disable_missing): B imported, A disabled, and named');
SELECT is(pg_temp.enabled('k-a', :ia), false, 'key A is disabled');
SELECT is((SELECT count(*) FROM crm_security.jwt_keys WHERE kid = 'k-a' AND issuer = :ia), 1::bigint, '... not deleted');
SELECT is(pg_temp.enabled('k-b', :ia), true, 'key B is enabled');
SELECT is(pg_temp.verifies(pg_temp.tok('k-a', :sa, :ia)), '28000', 'a token of key A is refused (28000)');
SELECT is(pg_temp.verifies(pg_temp.tok('k-b', :sb, :ia)), 'ok', 'a token of key B verifies');
SELECT is(pg_temp.enabled('k-a', :ib), true, 'the other issuer''s key of the same kid is untouched');
SELECT is(pg_temp.enabled('k-x', :ib), true, 'the other issuer''s other key is untouched');
SELECT is(pg_temp.enabled('k-none', NULL), true, 'the key without issuer is untouched');
SELECT is(pg_temp.verifies(pg_temp.tok('k-a', :sx, :ib)), 'ok', 'a token of the other issuer''s key k-a still verifies');
SELECT is((SELECT enabled FROM crm_security.jwt_keys WHERE kid = 'crm_security.internal'), true,
          'the extension''s own key is untouched');

-- The same set again: nothing changes, nothing is logged.
SELECT pg_temp.events('jwt.key_added') + pg_temp.events('jwt.key_updated') + pg_temp.events('jwt.key_disabled') AS before \gset
SELECT results_eq(format('SELECT imported, disabled, disabled_kids FROM crm_security.import_jwks(%L, %L, true)',
                         pg_temp.jwks(pg_temp.jwk('k-b', :sb)), :ia),
                  $$VALUES (1, 0, '{}'::text[])$$, 'the same JWKS again disables nothing');
SELECT is(pg_temp.events('jwt.key_added') + pg_temp.events('jwt.key_updated') + pg_temp.events('jwt.key_disabled'),
          :before::bigint, '... and records no event');
-- A provider that publishes A again does not re-enable it (as import_jwks always did).
SELECT is((SELECT disabled FROM crm_security.import_jwks(pg_temp.jwks(pg_temp.jwk('k-a', :sa), pg_temp.jwk('k-b', :sb)), :ia, true)),
          0, 'A published again: nothing disabled');
SELECT is(pg_temp.enabled('k-a', :ia), false, '... and A stays disabled until re-enabled by its owner');
SELECT is((SELECT disabled FROM crm_security.import_jwks(pg_temp.jwks(pg_temp.jwk('k-b', :sb)), :ia, false)),
          0, 'disable_missing => false disables nothing');

-- 2. Security events of key changes: kid, algorithm, issuer, the function; never material
SELECT is(pg_temp.events('jwt.key_added'), 5::bigint, 'every added key is a jwt.key_added event (import_jwks and add_jwt_key)');
SELECT is((SELECT count(*) FROM crm_security.security_events WHERE event_type = 'jwt.key_disabled'
              AND details @> jsonb_build_object('kid', 'k-a', 'issuer', :ia, 'algorithm', 'HS256', 'via', 'import_jwks')),
          1::bigint, 'the key disabled by import_jwks is a jwt.key_disabled event naming kid, issuer, algorithm');
SELECT is((SELECT count(*) FROM crm_security.security_events WHERE event_type = 'jwt.key_added'
              AND details @> '{"kid": "k-none", "algorithm": "HS256", "issuer": null, "via": "add_jwt_key"}'),
          1::bigint, 'add_jwt_key is a jwt.key_added event');
SELECT lives_ok($$SELECT crm_security.disable_jwt_key('k-x', 'https://idp-b.example')$$, 'disable_jwt_key(kid, issuer)');
SELECT lives_ok($$SELECT crm_security.disable_jwt_key('k-none')$$, 'disable_jwt_key(kid)');
SELECT is((SELECT count(*) FROM crm_security.security_events WHERE event_type = 'jwt.key_disabled'
              AND details ->> 'via' = 'disable_jwt_key' AND details ->> 'kid' IN ('k-x', 'k-none')),
          2::bigint, 'both disable_jwt_key calls are jwt.key_disabled events');
SELECT lives_ok(format('SELECT crm_security.import_jwks(%L, %L)', pg_temp.jwks(pg_temp.jwk('k-x', :sa)), :ib), 'new material for a key');
SELECT is(pg_temp.events('jwt.key_updated'), 1::bigint, '... is a jwt.key_updated event');
SELECT is((SELECT count(*) FROM crm_security.security_events
            WHERE event_type LIKE 'jwt.key_%'
              AND (details::text LIKE '%secret-of%' OR message LIKE '%secret-of%'
                   OR details ? 'k' OR details ? 'key' OR details ? 'jwk'
                   OR strpos(details::text, pg_temp.jwk('k', :sa) ->> 'k') > 0
                   OR strpos(details::text, pg_temp.jwk('k', :sb) ->> 'k') > 0
                   OR strpos(details::text, pg_temp.jwk('k', :sx) ->> 'k') > 0)),
          0::bigint, 'no event carries key material');
SELECT is((SELECT array_agg(DISTINCT k ORDER BY k) FROM crm_security.security_events, jsonb_object_keys(details) AS k
            WHERE event_type LIKE 'jwt.key_%'),
          ARRAY['algorithm', 'issuer', 'kid', 'not_after', 'not_before', 'via'], 'the details are these members only');

-- 3. Refused: without an issuer, a set without signature keys, NULLs, hostile and huge sets
SELECT lives_ok(format('SELECT crm_security.add_jwt_key(%L, %L, %L)', 'k-none2', 'HS256', :sx), 'another key without issuer');
SELECT is(pg_temp.err(format('SELECT crm_security.import_jwks(%L, NULL, true)', pg_temp.jwks(pg_temp.jwk('k-b', :sb)))),
          '22023: Without an issuer it would disable every key that has no issuer and is not in the JWKS.',
          'disable_missing without an issuer: 22023, saying why');
SELECT throws_ok(format('SELECT crm_security.import_jwks(%L, NULL, true)', pg_temp.jwks(pg_temp.jwk('k-b', :sb))),
                 '22023', 'disable_missing needs an issuer', '... with a message that names it');
SELECT is(pg_temp.enabled('k-none2', NULL), true, 'the keys without issuer are not touched by the refused call');
SELECT is((SELECT count(*) FROM crm_security.jwt_keys WHERE issuer IS NULL AND kid = 'k-b'), 0::bigint, '... and nothing was imported');
SELECT throws_ok(format('SELECT crm_security.import_jwks(%L, %L, true)', '{"keys": []}'::jsonb, :ia), '22023', NULL,
                 'an empty JWKS cannot disable every key of the issuer');
SELECT throws_ok(format('SELECT crm_security.import_jwks(%L, %L, true)',
                        pg_temp.jwks(pg_temp.jwk('k-enc', :sb) || '{"use": "enc"}'), :ia), '22023', NULL,
                 '... nor a JWKS of encryption keys only');
SELECT is(pg_temp.enabled('k-b', :ia), true, 'key B is still enabled');
SELECT results_eq(format('SELECT imported, disabled FROM crm_security.import_jwks(%L, %L, false)', '{"keys": []}'::jsonb, :ia),
                  $$VALUES (0, 0)$$, 'an empty JWKS without disable_missing imports nothing');
SELECT throws_ok($$SELECT crm_security.import_jwks(NULL, 'https://idp-a.example', true)$$, '22023', NULL, 'a NULL JWKS is refused');
SELECT throws_ok(format('SELECT crm_security.import_jwks(%L, %L, NULL)', pg_temp.jwks(pg_temp.jwk('k-b', :sb)), :ia),
                 '22023', NULL, 'a NULL disable_missing is refused');
SELECT throws_ok(format('SELECT crm_security.import_jwks(%L, %L, true)', '{}', :ia), '22023', NULL, '{} is not a JWKS');
SELECT throws_ok(format('SELECT crm_security.import_jwks(%L, %L, true)', '[1]', :ia), '22023', NULL, 'an array is not a JWKS');
SELECT throws_ok(format('SELECT crm_security.import_jwks(%L, %L, true)', pg_temp.jwks(pg_temp.jwk('k-b', :sb)), ''),
                 '23514', NULL, 'an empty issuer is refused');
SELECT throws_ok(format('SELECT crm_security.import_jwks(%L, %L, true)', pg_temp.jwks(pg_temp.jwk('k-b', :sb)), 'crm_security:internal'),
                 '42501', NULL, 'the extension''s issuer is reserved');
SELECT throws_ok(format('SELECT crm_security.import_jwks(%L, %L, true)', pg_temp.jwks(pg_temp.jwk('crm_security.internal', :sb)), :ia),
                 '42501', NULL, 'the extension''s kid is reserved');
SELECT throws_ok(format('SELECT crm_security.import_jwks(%L, %L, true)',
                        jsonb_build_object('keys', (SELECT jsonb_agg(pg_temp.jwk('k' || g, :sb)) FROM generate_series(1, 257) g)), :ia),
                 '22023', NULL, 'a JWKS of 257 keys is refused');
SELECT throws_ok(format('SELECT crm_security.import_jwks(%L, %L, true)',
                        pg_temp.jwks(pg_temp.jwk('k-b', :sb) || jsonb_build_object('x5c', repeat('A', 1100000))), :ia),
                 '22023', NULL, 'a JWKS over 1 MB is refused');
SELECT results_eq(format('SELECT imported, disabled FROM crm_security.import_jwks(%L, %L, true)',
                         jsonb_build_object('keys', (SELECT jsonb_agg(pg_temp.jwk(repeat(chr(97 + g % 26), 200) || g, :sb)) FROM generate_series(1, 256) g)),
                         'https://idp-c.example'),
                  $$VALUES (256, 0)$$, '256 keys with 200-byte kids: imported, one event each');
SELECT results_eq(format('SELECT imported, disabled, disabled_kids FROM crm_security.import_jwks(%L, %L, true)',
                         pg_temp.jwks(pg_temp.jwk(E'k\n"x'';--', :sb)), 'https://idp-c.example'),
                  $$SELECT 1, 256, (SELECT array_agg(kid ORDER BY kid COLLATE "C") FROM crm_security.jwt_keys WHERE issuer = 'https://idp-c.example' AND kid <> E'k\n"x'';--')$$,
                  'a hostile kid is imported as is, and the 256 others are disabled and named');

-- 4. Privileges
CREATE ROLE regress_js_user;
SET LOCAL ROLE regress_js_user;
SELECT is(pg_temp.err(format('SELECT crm_security.import_jwks(%L, %L, true)', pg_temp.jwks(pg_temp.jwk('k-b', :sb)), :ia)) LIKE '42501%',
          true, 'PUBLIC may not call import_jwks(jwks, issuer, disable_missing): 42501');
SELECT is(pg_temp.err($$SELECT crm_security._jwt_key_changed('added', '{}')$$) LIKE '42501%', true,
          '... nor write a key change event');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
DROP ROLE IF EXISTS regress_js_user;
