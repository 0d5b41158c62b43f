-- jwt_sign and sign_message: round trips for all 13 algorithms with every key form (PEM
-- PKCS#8, traditional, SPKI, PKCS#1, X.509 certificate, JWK), deterministic and randomized
-- signatures, JOSE signature lengths, header handling, and the settings' privileges.

BEGIN;
SELECT plan(65);

\ir include/jwt_fixtures.sql


CREATE TEMP TABLE algs (alg text, priv text, pub text, pub_jwk jsonb, priv_jwk jsonb);
INSERT INTO algs VALUES
    ('HS256', pg_temp.k('secret'), pg_temp.k('secret'), NULL, NULL),
    ('HS384', pg_temp.k('secret') || pg_temp.k('secret'), pg_temp.k('secret') || pg_temp.k('secret'), NULL, NULL),
    ('HS512', pg_temp.k('secret') || pg_temp.k('secret'), pg_temp.k('secret') || pg_temp.k('secret'), NULL, NULL),
    ('RS256', pg_temp.k('rsa_priv'), pg_temp.k('rsa_pub'), pg_temp.kj('rsa_jwk'), pg_temp.kj('rsa_priv_jwk')),
    ('RS384', pg_temp.k('rsa_priv_trad'), pg_temp.k('rsa_pub_pkcs1'), pg_temp.kj('rsa_jwk'), pg_temp.kj('rsa_priv_jwk')),
    ('RS512', pg_temp.k('rsa_priv'), pg_temp.k('rsa_cert'), pg_temp.kj('rsa_jwk'), pg_temp.kj('rsa_priv_jwk')),
    ('PS256', pg_temp.k('rsa_priv'), pg_temp.k('rsa_pub'), pg_temp.kj('rsa_jwk'), pg_temp.kj('rsa_priv_jwk')),
    ('PS384', pg_temp.k('rsa_priv_trad'), pg_temp.k('rsa_cert'), pg_temp.kj('rsa_jwk'), pg_temp.kj('rsa_priv_jwk')),
    ('PS512', pg_temp.k('rsa_priv'), pg_temp.k('rsa_pub_pkcs1'), pg_temp.kj('rsa_jwk'), pg_temp.kj('rsa_priv_jwk')),
    ('ES256', pg_temp.k('ec_priv'), pg_temp.k('ec_pub'), pg_temp.kj('ec_jwk'), pg_temp.kj('ec_priv_jwk')),
    ('ES384', pg_temp.k('ec384_priv'), pg_temp.k('ec384_pubkey'), NULL, NULL),
    ('ES512', pg_temp.k('ec521_priv'), pg_temp.k('ec521_pubkey'), NULL, NULL),
    ('EdDSA', pg_temp.k('ed_priv'), pg_temp.k('ed_pub'), pg_temp.kj('ed_jwk'), pg_temp.kj('ed_priv_jwk'));
UPDATE algs SET pub_jwk = pg_catalog.jsonb_build_object('kty', 'oct', 'k', pg_temp.b64u(pub)), priv_jwk = pg_catalog.jsonb_build_object('kty', 'oct', 'k', pg_temp.b64u(pub))
WHERE alg LIKE 'HS%';

-- Round trips for the 13 algorithms: PEM (PKCS#8, traditional, SPKI, PKCS#1, certificate) and JWK.
SELECT is(crm_security.jwt_verify(crm_security.jwt_sign(pg_temp.claims()::jsonb, priv, alg), pub, algorithms => ARRAY[alg]) ->> 'sub',
          'alice', alg || ': jwt_sign with text key, jwt_verify with text key')
FROM algs ORDER BY alg;
SELECT is(crm_security.jwt_verify(crm_security.jwt_sign(pg_temp.claims()::jsonb, priv_jwk, alg), pub_jwk, algorithms => ARRAY[alg]) ->> 'sub',
          'alice', alg || ': jwt_sign with a private JWK, jwt_verify with the public JWK')
FROM algs WHERE priv_jwk IS NOT NULL ORDER BY alg;
SELECT is((SELECT header FROM crm_security.jwt_decode(crm_security.jwt_sign('{"sub":"a"}', priv, alg))),
          pg_catalog.jsonb_build_object('alg', alg, 'typ', 'JWT'), alg || ': header is {"alg","typ"}')
FROM algs ORDER BY alg;

-- Deterministic algorithms give the same token twice; ECDSA never does, but its signatures
-- always have the JOSE length (leading zero bytes kept).
SELECT is(crm_security.jwt_sign('{"sub":"a"}', priv, alg), crm_security.jwt_sign('{"sub":"a"}', priv, alg),
          alg || ': deterministic signature')
FROM algs WHERE alg LIKE 'HS%' OR alg LIKE 'RS%' OR alg = 'EdDSA' ORDER BY alg;
SELECT is((SELECT pg_catalog.count(DISTINCT s) FILTER (WHERE pg_catalog.length(s) = len
                                                        AND crm_security.verify_signature(a.alg, a.pub, '\x6d', s))
           FROM (SELECT crm_security.sign_message(a.alg, a.priv, '\x6d') AS s FROM pg_catalog.generate_series(1, n)) x),
          n::bigint, pg_catalog.format('%s: %s signatures all distinct, all %s bytes, all verify', a.alg, n, len))
FROM algs a JOIN (VALUES ('ES256', 64, 300), ('ES384', 96, 100), ('ES512', 132, 100)) AS v(alg, len, n) USING (alg)
ORDER BY a.alg;
SELECT is(pg_catalog.length(crm_security.sign_message(alg, priv, '\x6d')), len, alg || ': signature length ' || len)
FROM algs JOIN (VALUES ('HS256', 32), ('HS384', 48), ('HS512', 64), ('RS256', 256), ('PS512', 256), ('EdDSA', 64)) AS v(alg, len) USING (alg)
ORDER BY alg;

-- Headers.
SELECT is((SELECT header FROM crm_security.jwt_decode(crm_security.jwt_sign('{"sub":"a"}', pg_temp.k('secret'), 'HS256',
                                                                           '{"kid":"k1","typ":"at+jwt","x-tenant":7}'))),
          '{"alg":"HS256","typ":"at+jwt","kid":"k1","x-tenant":7}'::jsonb, 'extra header members are kept, typ can be replaced');
SELECT is((SELECT header ->> 'kid' FROM crm_security.jwt_decode(crm_security.jwt_sign('{"sub":"a"}', pg_temp.kj('ec_priv_jwk') || '{"kid":"ec-1"}', 'ES256'))),
          'ec-1', 'the kid of a private JWK goes into the header');
SELECT is((SELECT header ->> 'alg' FROM crm_security.jwt_decode(crm_security.jwt_sign('{"sub":"a"}', pg_temp.k('secret'), 'HS256', '{"alg":"HS256"}'))),
          'HS256', 'header alg equal to the algorithm is fine');
SELECT throws_ok($$SELECT crm_security.jwt_sign('{"sub":"a"}', '0123456789abcdef0123456789abcdef', 'HS256', '{"alg":"none"}')$$,
                 '22023', NULL, 'header alg none with HS256: 22023');
SELECT throws_ok($$SELECT crm_security.jwt_sign('{"sub":"a"}', '0123456789abcdef0123456789abcdef', 'HS256', '{"alg":"HS512"}')$$,
                 '22023', NULL, 'header alg different from the algorithm: 22023');
SELECT throws_ok($$SELECT crm_security.jwt_sign('{"sub":"a"}', '0123456789abcdef0123456789abcdef', 'HS256', '{"crit":["x"],"x":1}')$$,
                 '22023', NULL, 'header crit: 22023 (tokens with crit are never accepted)');
SELECT throws_ok($$SELECT crm_security.jwt_sign('{"sub":"a"}', '0123456789abcdef0123456789abcdef', 'HS256', '[1]')$$,
                 '22023', NULL, 'header not an object: 22023');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.jwt_sign(%L::jsonb, '0123456789abcdef0123456789abcdef')$$,
                     pg_catalog.jsonb_build_object('pad', pg_catalog.repeat('x', 70000))),
                 '22023', NULL, 'a token longer than max_token_length is not made: 22023');
SELECT is(crm_security.jwt_sign('{"sub":"a"}', pg_temp.k('secret')) ~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$', true,
          'jwt_sign output is three unpadded base64url segments (default algorithm HS256)');
SELECT is(crm_security.jwt_verify(crm_security.jwt_sign(c, pg_temp.k('secret')), pg_temp.k('secret')), c,
          'claims round-trip exactly (unicode, numbers, nesting)')
FROM (SELECT pg_catalog.jsonb_build_object('sub', 'ünïcødé €', 'n', 1.25, 'big', 12345678901234567890, 'neg', -7,
                                           'arr', '[1,"two",{"three":3},null,true]'::jsonb, 'q', E'quote " backslash \\ tab \t',
                                           'exp', pg_temp.t(3600)) AS c) s;

-- The settings: max_token_length is for superusers only.
CREATE ROLE regress_jwt_user;
SET ROLE regress_jwt_user;
SELECT throws_ok('SET crm_security.max_token_length = 1000000', '42501', NULL,
                 'a non-superuser cannot raise crm_security.max_token_length');
SELECT is(crm_security.jwt_verify(crm_security.jwt_sign(pg_temp.claims()::jsonb, '0123456789abcdef0123456789abcdef'),
                                  '0123456789abcdef0123456789abcdef') ->> 'sub', 'alice',
          'a non-superuser can sign and verify');
RESET ROLE;
DROP ROLE regress_jwt_user;

SELECT * FROM finish();
ROLLBACK;
