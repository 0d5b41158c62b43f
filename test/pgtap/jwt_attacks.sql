-- Attacks on JWT/JWS verification: algorithm confusion, alg none, the algorithms allowlist,
-- crit, keys named by the token (jwk, jku, x5u, kid), psychic ECDSA signatures, weak keys and
-- keys of the wrong kind.  Every refusal is checked with its SQLSTATE; each attack has a
-- genuine counterpart that passes, so the refusals are refusals of the defect carried.

BEGIN;
SELECT plan(121);

\ir include/jwt_fixtures.sql


-- Sanity: good tokens pass, so the refusals below are refusals of the defect they carry.
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"HS256","typ":"JWT"}', pg_temp.claims()),
                                  pg_temp.k('secret')) ->> 'sub', 'alice', 'HS256 token accepted');
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')),
                                  pg_temp.k('rsa_pub')) ->> 'sub', 'alice', 'RS256 token accepted with the PEM');
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')),
                                  pg_temp.kj('rsa_jwk')) ->> 'sub', 'alice', 'RS256 token accepted with the JWK');
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"ES256"}', pg_temp.claims(), 'ES256', pg_temp.k('ec_priv')),
                                  pg_temp.k('ec_pub')) ->> 'sub', 'alice', 'ES256 token accepted');
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"EdDSA"}', pg_temp.claims(), 'EdDSA', pg_temp.k('ed_priv')),
                                  pg_temp.kj('ed_jwk')) ->> 'sub', 'alice', 'EdDSA token accepted');

-- Algorithm confusion: the public key's PEM text used as an HMAC secret.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), pg_temp.k('rsa_pub')), pg_temp.k('rsa_pub')),
                 '28000', NULL, 'HS256 token MACed with the RSA public PEM, verified with that PEM: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L, algorithms => ARRAY[''HS256''])',
                     pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), pg_temp.k('rsa_pub')), pg_temp.k('rsa_pub')),
                 '28000', NULL, 'same, with HS256 explicitly allowed: still refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), pg_temp.k('ec_pub')), pg_temp.k('ec_pub')),
                 '28000', NULL, 'HS256 token MACed with the EC public PEM, verified with that PEM: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), pg_temp.k('ed_pub')), pg_temp.k('ed_pub')),
                 '28000', NULL, 'HS256 token MACed with the Ed25519 public PEM: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), pg_temp.k('rsa_jwk')), pg_temp.k('rsa_jwk')),
                 '28000', NULL, 'HS256 token MACed with the RSA JWK text, verified with that JWK: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.verify_signature('HS256', %L, '\x61'::bytea, crm_security.hmac('\x61'::bytea, pg_catalog.convert_to(%L, 'UTF8'), 'sha256'))$$,
                     pg_temp.k('rsa_pub'), pg_temp.k('rsa_pub')),
                 '28000', NULL, 'verify_signature: an RSA public PEM is never an HMAC secret');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')), pg_temp.k('ec_pub')),
                 '28000', NULL, 'RS256 token verified with an EC key: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.signed(pg_temp.b64u('{"alg":"PS256"}'), pg_temp.b64u(pg_temp.claims()), 'RS256', pg_temp.k('rsa_priv')),
                     pg_temp.k('rsa_pub')),
                 '28000', NULL, 'PKCS#1 v1.5 signature presented as PS256: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.signed(pg_temp.b64u('{"alg":"ES384"}'), pg_temp.b64u(pg_temp.claims()), 'ES256', pg_temp.k('ec_priv')),
                     pg_temp.k('ec_pub')),
                 '28000', NULL, 'P-256 signature presented as ES384: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.tok('{"alg":"ES384"}', pg_temp.claims(), 'ES256', pg_temp.k('ec_priv')),
                     pg_temp.k('ec384_pub')),
                 '28000', NULL, 'ES256 signature verified with a P-384 key: refused');

-- A JWK binds its key: alg, use, key_ops.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')),
                     pg_temp.kj('rsa_jwk') || '{"alg":"PS256"}'),
                 '28000', NULL, 'RS256 token, JWK with alg PS256: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok('{"alg":"HS256"}', pg_temp.claims()),
                     pg_catalog.jsonb_build_object('kty', 'oct', 'alg', 'HS512', 'k', pg_temp.b64u(pg_temp.k('secret')))),
                 '28000', NULL, 'HS256 token, oct JWK with alg HS512: refused');
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"HS256"}', pg_temp.claims()),
              pg_catalog.jsonb_build_object('kty', 'oct', 'alg', 'HS256', 'use', 'sig', 'k', pg_temp.b64u(pg_temp.k('secret')))) ->> 'sub',
          'alice', 'HS256 token, oct JWK with alg HS256 and use sig: accepted');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')),
                     pg_temp.kj('rsa_jwk') || '{"use":"enc"}'),
                 '28000', NULL, 'JWK with use enc: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')),
                     pg_temp.kj('rsa_jwk') || '{"key_ops":["sign"]}'),
                 '28000', NULL, 'JWK with key_ops [sign] used to verify: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')),
                     pg_temp.kj('rsa_jwk') || '{"alg":"none"}'),
                 '28000', NULL, 'JWK with alg none: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.sign_message('HS256', %L::jsonb, '\x61')$$,
                     pg_catalog.jsonb_build_object('kty', 'oct', 'key_ops', pg_catalog.jsonb_build_array('verify'),
                                                   'k', pg_temp.b64u(pg_temp.k('secret')))),
                 '28000', NULL, 'sign_message with a JWK whose key_ops lack sign: refused');

-- alg none, in every spelling, with and without a signature.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.b64u(pg_catalog.format('{"alg":"%s"}', a)) || '.' || pg_temp.b64u(pg_temp.claims()) || '.',
                     pg_temp.k('secret')),
                 '28000', NULL, 'alg ' || a || ' without a signature: refused')
FROM pg_catalog.unnest(ARRAY['none', 'None', 'NONE', 'nOnE']) AS a;
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.hs_tok(pg_catalog.format('{"alg":"%s"}', a), pg_temp.claims(), pg_temp.k('secret')),
                     pg_temp.k('secret')),
                 '28000', NULL, 'alg ' || a || ' with a valid HMAC as signature: refused')
FROM pg_catalog.unnest(ARRAY['none', 'None', 'NONE', 'nOnE']) AS a;
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.b64u('{"alg":"none"}') || '.' || pg_temp.b64u(pg_temp.claims()) || '.', pg_temp.kj('rsa_jwk')),
                 '28000', NULL, 'alg none with a JWK: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jws_verify(%L, %L::jsonb)',
                     pg_temp.b64u('{"alg":"none"}') || '.' || pg_temp.b64u('hello') || '.', pg_temp.kj('rsa_jwk')),
                 '28000', NULL, 'jws_verify: alg none refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.b64u('{"alg":"HS256"}') || '.' || pg_temp.b64u(pg_temp.claims()) || '.', pg_temp.k('secret')),
                 '28000', NULL, 'HS256 token with the signature stripped: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L, algorithms => ARRAY[''none''])',
                     pg_temp.b64u('{"alg":"none"}') || '.' || pg_temp.b64u(pg_temp.claims()) || '.', pg_temp.k('secret')),
                 '22023', NULL, 'none in the algorithms argument: 22023');
SELECT throws_ok($$SELECT crm_security.verify_signature('none', '0123456789abcdef0123456789abcdef', '\x61', '\x')$$,
                 '22023', NULL, 'verify_signature with algorithm none: 22023');
SELECT throws_ok($$SELECT crm_security.sign_message('none', '0123456789abcdef0123456789abcdef', '\x61')$$,
                 '22023', NULL, 'sign_message with algorithm none: 22023');
SELECT throws_ok($$SELECT crm_security.jwt_sign('{"sub":"a"}', '0123456789abcdef0123456789abcdef', 'none')$$,
                 '22023', NULL, 'jwt_sign with algorithm none: 22023');

-- The algorithms allowlist.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L, algorithms => ARRAY[''HS512''])',
                     pg_temp.tok('{"alg":"HS256"}', pg_temp.claims()), pg_temp.k('secret')),
                 '28000', NULL, 'HS256 token, algorithms {HS512}: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L, algorithms => ARRAY[''PS256'',''ES256''])',
                     pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')), pg_temp.k('rsa_pub')),
                 '28000', NULL, 'RS256 token, algorithms {PS256,ES256}: refused');
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')),
                                  pg_temp.k('rsa_pub'), algorithms => ARRAY['PS256', 'RS256']) ->> 'sub',
          'alice', 'RS256 token, algorithms {PS256,RS256}: accepted');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L, algorithms => ARRAY[''XS256''])',
                     pg_temp.tok('{"alg":"HS256"}', pg_temp.claims()), pg_temp.k('secret')),
                 '22023', NULL, 'unknown algorithm name in algorithms: 22023');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L, algorithms => ARRAY[''hs256''])',
                     pg_temp.tok('{"alg":"HS256"}', pg_temp.claims()), pg_temp.k('secret')),
                 '22023', NULL, 'algorithm names are case-sensitive (hs256): 22023');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.tok('{"alg":"hs256"}', pg_temp.claims(), 'HS256'), pg_temp.k('secret')),
                 '28000', NULL, 'token alg hs256 (wrong case): refused');

-- crit is always refused.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.tok(h, pg_temp.claims()), pg_temp.k('secret')),
                 '28000', NULL, 'crit refused: ' || h)
FROM pg_catalog.unnest(ARRAY['{"alg":"HS256","crit":["x-custom"],"x-custom":1}',
                             '{"alg":"HS256","crit":["exp"]}',
                             '{"alg":"HS256","crit":[]}',
                             '{"alg":"HS256","crit":"b64","b64":false}']) AS h;
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jws_verify(%L, %L)',
                     pg_temp.tok('{"alg":"HS256","crit":["b64"],"b64":false}', 'payload'), pg_temp.k('secret')),
                 '28000', NULL, 'jws_verify: crit b64 refused');

-- Keys named by the token are never used: embedded jwk, jku, x5u; kid only selects.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.tok(pg_catalog.format('{"alg":"ES256","jwk":%s}', pg_temp.k('att_jwk')), pg_temp.claims(),
                                 'ES256', pg_temp.k('att_priv')), pg_temp.k('ec_pub')),
                 '28000', NULL, 'attacker key embedded as header jwk: refused');
SELECT is(crm_security.jwt_verify(pg_temp.tok(pg_catalog.format('{"alg":"ES256","jwk":%s}', pg_temp.k('att_jwk')),
                                              pg_temp.claims(), 'ES256', pg_temp.k('ec_priv')),
                                  pg_temp.k('ec_pub')) ->> 'sub',
          'alice', 'header jwk is ignored: a token signed by the real key still passes');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.tok('{"alg":"ES256","jku":"https://attacker.example/jwks.json","x5u":"https://attacker.example/c.pem"}',
                                 pg_temp.claims(), 'ES256', pg_temp.k('att_priv')), pg_temp.k('ec_pub')),
                 '28000', NULL, 'jku/x5u pointing elsewhere: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok(pg_catalog.format('{"alg":"HS256","kid":%s}', pg_catalog.to_json(kid)), pg_temp.claims()),
                     pg_catalog.jsonb_build_object('keys', pg_catalog.jsonb_build_array(
                         pg_catalog.jsonb_build_object('kty', 'oct', 'kid', 'k1', 'k', pg_temp.b64u(pg_temp.k('secret')))))),
                 '28000', NULL, 'kid injection refused: ' || pg_catalog.to_json(kid)::text)
FROM pg_catalog.unnest(ARRAY['../../../../dev/null', $$' OR '1'='1$$, 'k1'' --', 'k1' || pg_catalog.chr(10)]) AS kid;
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"HS256","kid":"k2"}', pg_temp.claims()),
              pg_catalog.jsonb_build_object('keys', pg_catalog.jsonb_build_array(
                  pg_catalog.jsonb_build_object('kty', 'oct', 'kid', 'k1', 'k', pg_temp.b64u('another secret of 32 bytes......')),
                  pg_catalog.jsonb_build_object('kty', 'oct', 'kid', 'k2', 'k', pg_temp.b64u(pg_temp.k('secret')))))) ->> 'sub',
          'alice', 'JWKS: kid picks the matching key');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok('{"alg":"HS256","kid":"k1"}', pg_temp.claims()),
                     pg_catalog.jsonb_build_object('keys', pg_catalog.jsonb_build_array(
                         pg_catalog.jsonb_build_object('kty', 'oct', 'kid', 'k1', 'k', pg_temp.b64u('another secret of 32 bytes......')),
                         pg_catalog.jsonb_build_object('kty', 'oct', 'kid', 'k2', 'k', pg_temp.b64u(pg_temp.k('secret')))))),
                 '28000', NULL, 'JWKS: the key named by kid does not verify: refused (no fallback to another key)');

-- ECDSA: psychic signatures (CVE-2022-21449) and out-of-range r, s.
CREATE TEMP TABLE es AS
SELECT si, crm_security.sign_message('ES256', pg_temp.k('ec_priv'), pg_catalog.convert_to(si, 'UTF8')) AS sig
FROM (SELECT pg_temp.b64u('{"alg":"ES256"}') || '.' || pg_temp.b64u(pg_temp.claims()) AS si) s;
SELECT is(pg_catalog.length(sig), 64, 'ES256 signatures are raw r||s, 64 bytes') FROM es;
SELECT ok(crm_security.verify_signature('ES256', pg_temp.k('ec_pub'), pg_catalog.convert_to(si, 'UTF8'), sig),
          'ES256: the genuine signature verifies') FROM es;
SELECT ok(NOT crm_security.verify_signature('ES256', pg_temp.k('ec_pub'), pg_catalog.convert_to(si, 'UTF8'), bad),
          'ES256 verify_signature false: ' || what)
FROM es, LATERAL (VALUES
    ('all-zero signature (psychic signature)', pg_catalog.decode(pg_catalog.repeat('00', 64), 'hex')),
    ('r = 0', pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex') || substring(sig FROM 33)),
    ('s = 0', substring(sig FOR 32) || pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex')),
    ('r = n', '\xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'::bytea || substring(sig FROM 33)),
    ('s = n', substring(sig FOR 32) || '\xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'::bytea),
    ('r = s = n', '\xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'::bytea),
    ('63 bytes', substring(sig FOR 63)),
    ('65 bytes', sig || '\x00'::bytea),
    ('empty', '\x'::bytea),
    ('r and s swapped', substring(sig FROM 33) || substring(sig FOR 32))
) AS v(what, bad);
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)', si || '.' || pg_temp.b64u(bad), pg_temp.k('ec_pub')),
                 '28000', NULL, 'ES256 token refused: ' || what)
FROM es, LATERAL (VALUES
    ('all-zero signature (psychic signature)', pg_catalog.decode(pg_catalog.repeat('00', 64), 'hex')),
    ('r = 0, s = 0 as a 2-byte signature', '\x0000'::bytea),
    ('DER-encoded signature', '\x3006020101020101'::bytea),
    ('r = n, s = n', '\xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'::bytea)
) AS v(what, bad);

-- Minimum key sizes.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), pg_temp.k('secret31')), pg_temp.k('secret31')),
                 '28000', NULL, 'HMAC secret of 31 bytes: jwt_verify refuses');
SELECT throws_ok($$SELECT crm_security.jwt_sign('{"sub":"a"}', '0123456789abcdef0123456789abcde', 'HS256')$$,
                 '28000', NULL, 'HMAC secret of 31 bytes: jwt_sign refuses');
SELECT throws_ok($$SELECT crm_security.sign_message('HS256', '0123456789abcdef0123456789abcde', '\x61')$$,
                 '28000', NULL, 'HMAC secret of 31 bytes: sign_message refuses');
SELECT throws_ok($$SELECT crm_security.verify_signature('HS256', '0123456789abcdef0123456789abcde', '\x61',
                       crm_security.hmac('\x61'::bytea, '0123456789abcdef0123456789abcde'::bytea, 'sha256'))$$,
                 '28000', NULL, 'HMAC secret of 31 bytes: verify_signature refuses even a correct MAC');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.verify_signature('HS256', %L::jsonb, '\x61', '\x00')$$,
                     pg_catalog.jsonb_build_object('kty', 'oct', 'k', pg_temp.b64u(pg_temp.k('secret31')))),
                 '28000', NULL, 'oct JWK of 31 bytes: refused');
SELECT ok(crm_security.verify_signature('HS256', pg_temp.k('secret'), '\x61',
              crm_security.hmac('\x61'::bytea, pg_catalog.convert_to(pg_temp.k('secret'), 'UTF8'), 'sha256')),
          'HMAC secret of 32 bytes: verify_signature accepts');
SELECT is(crm_security.jwt_verify(crm_security.jwt_sign(pg_temp.claims()::jsonb, pg_temp.k('secret'), 'HS256'),
                                  pg_temp.k('secret')) ->> 'sub', 'alice', 'HMAC secret of 32 bytes: jwt_sign/jwt_verify round trip');
SELECT is(pg_catalog.length(crm_security.hmac('\x61'::bytea, '\x01'::bytea, 'sha256')), 32, 'hmac() takes a 1-byte key');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)', pg_temp.k('rsa1024_token'), pg_temp.k('rsa1024_pub')),
                 '28000', NULL, 'RSA 1024-bit key (PEM): jwt_verify refuses a correctly signed token');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)', pg_temp.k('rsa1024_token'), pg_temp.k('rsa1024_jwk')),
                 '28000', NULL, 'RSA 1024-bit key (JWK): jwt_verify refuses');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.sign_message('RS256', %L, '\x61')$$, pg_temp.k('rsa1024_priv')),
                 '28000', NULL, 'RSA 1024-bit private key: sign_message refuses');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.jwt_sign('{"sub":"a"}', %L, 'RS256')$$, pg_temp.k('rsa1024_priv')),
                 '28000', NULL, 'RSA 1024-bit private key: jwt_sign refuses');

-- Wrong kinds of key.
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.sign_message('RS256', %L, '\x61')$$, pg_temp.k('rsa_pub')),
                 '28000', NULL, 'sign_message with a public PEM: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.sign_message('ES256', %L::jsonb, '\x61')$$, pg_temp.k('ec_jwk')),
                 '28000', NULL, 'sign_message with a public JWK: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.jwt_sign('{"sub":"a"}', %L, 'RS256')$$, pg_temp.k('rsa_pub')),
                 '28000', NULL, 'jwt_sign with a public PEM: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.jwt_sign('{"sub":"a"}', %L::jsonb, 'RS256')$$,
                     pg_catalog.jsonb_build_object('keys', pg_catalog.jsonb_build_array(pg_temp.kj('rsa_jwk')))),
                 '28000', NULL, 'jwt_sign with a JWKS: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.jwt_sign('{"sub":"a"}', %L, 'HS256')$$, pg_temp.k('rsa_priv')),
                 '28000', NULL, 'jwt_sign HS256 with an RSA private PEM as secret: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.sign_message('ES256', %L, '\x61')$$, pg_temp.k('ed_priv')),
                 '28000', NULL, 'sign_message ES256 with an Ed25519 key: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.sign_message('PS256', %L, '\x61')$$, pg_temp.k('ec_priv')),
                 '28000', NULL, 'sign_message PS256 with an EC key: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok('{"alg":"HS256"}', pg_temp.claims()), k),
                 '28000', NULL, 'key jsonb that is no JWK: ' || k)
FROM pg_catalog.unnest(ARRAY['[]', '"secret"', '42', '{}', '{"keys":[]}', '{"keys":{}}', '{"kty":"oct"}',
                             '{"kty":"oct","k":42}', '{"kty":"XYZ","k":"AAAA"}']) AS k;
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')), k),
                 '28000', NULL, 'broken PEM: ' || d)
FROM (VALUES ('truncated', pg_catalog.left(pg_temp.k('rsa_pub'), 200)),
             ('no end line', pg_catalog.replace(pg_temp.k('rsa_pub'), '-----END PUBLIC KEY-----', '')),
             ('garbage body', E'-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'),
             ('wrong label', pg_catalog.replace(pg_temp.k('rsa_pub'), 'PUBLIC KEY', 'CERTIFICATE'))) AS v(d, k);

-- Keys and signatures made outside (Python cryptography, openssl) for the checks below.
INSERT INTO k VALUES
    ('e1_pub', $k$-----BEGIN PUBLIC KEY-----
MIIBIDANBgkqhkiG9w0BAQEFAAOCAQ0AMIIBCAKCAQEAqZr1wAxc4Au7H0TiYK6q
/yCXxwCgiABM4Nn19BKk05f0DLyBz/PTTt7iQafGg5N83mYV4XQZDT5HMremakFl
3rKVyqTJc2Vern1vpK4roJ7rB0Iu3kOd9MfeF5D1/nD9DmCGhZfnFDW4cuchnNBg
j5Nr2fo8rzPsM7gFGPpo6gbd194Yzk0+w5SniZBVp1AeemLa7A8FH00dRZW4KU6Y
d+XuNhPfedKxKVVms9u3w0oKH91xY45AukOtiSLu75G5HtfMFfZLP0ETDfYFV7Mi
LT9+ZlbHf3atIhDluShmmac92fMDbgn9SmHP+KBYz0ym+NSQdgHJRRThVSCfYi3v
pQIBAQ==
-----END PUBLIC KEY-----$k$),
    ('e1_msg', $k$6d657373616765$k$),
    ('e1_sig', $k$0001ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff003031300d060960864801650304020105000420ab530a13e45914982b79f9b7e3fba994cfd1f3fb22f71cea1afbf02b460c6d1d$k$),
    ('ec_offcurve', $k$-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE5zO2W6ZDMFQlQNf0jcS6ykq1n4MmxeVJUx3GGllGdKI+FH5CP6vIpuod57gtGwtGV3OgZCMwM3MsNpjslVsDjg==
-----END PUBLIC KEY-----$k$),
    ('pss_salt0', $k$0626bcedc6e95d0b7dd5aedbed3551b088250660a994016d122b43493e494b34bc517c87187f3433f8d8d7daef16fbe67f118c615630d33a17a2545abf281ca503c78befd9a956fcaef3fbadd89a6cd0222aeb0afe4059c27feaddab4a5b82138512339e2d3d33dcf10dca7927b3b78bca48c1369cca20dc2352d0712f65288d85ca07f11a1c7ce7f2a0623de25a6370ff374a2f435c5af832c6e182ccab646a35b3e7164058707afc414423effc42f5ba10b4424eb0ff14361eb774dff9042c8d7583e4264fa695d8d5b10d80b9dc8c2aac808b414f7d2b4e626df56791afca1c87cf770913dfc391240c107043afb04907644eaf0e78f0b23d09d099d394e8$k$),
    ('pss_salt64', $k$57682b5667fefe632eef737480512aa8402751777733332e33ec975b8048e00f51373c571df014ca09f6357d6a0ab31ec5500910bb85d43446fea707caff2911f6d5e017d82c96d2d970fdb4eb280ab4c2c5130b1c1c19d0c299fad47c184ee760274595ddbb5c659b0c77562bcae0a296a48338f8bc6ea6b613b55acf9fad67ce614465e5e283b287ba004ad7798f23b1f7d6e9ed816829f316e0d92091064e0eaaf2980aee123960b49dc29f62f83740a457ff2ed7c068814bb81be1024a1b1723c0ec62ab7682657c68b2c9e1e040a1c4501427c741ca94e9c84679780edc88b33094152f302fab2fa60c65717750924dbbb0371e3b9f41705c114e148544$k$),
    ('pss_mgf1sha1', $k$2beb6fb17148bc6feda33dc0930b7f03385b575a5f2f4068a47338bde160000f8d89e9098db05b612ee6655617168ba103b18d1c92d616bd5714cc18dac9146197f8671df37fc12c985566301a016e8a865fe437f33edb072f39cf5e44aaed376b8be3e32b346c1fbe30f20a8ba08eb84eacefc55d8f6bcc5a2ef7a1022f72db0e61c59c0a13a3f4fdd898932c173e69fd828d27dbe246bdcc2b9fb9647b98a98cb06188c3f061d0b798a9dfd53e7bc94c456c516c813ac5eea338c026a6e02e893748c6d43819d5be7811108ec5045ecdb26fc90932844752260dbded16014402cb6d841441576f388b8ef6c2f675e6f31b140de5a38b8c46828222d69ff046$k$),
    ('pss_ok', $k$19c14f25995ade393b41551d824279996d7c5126b3897b46b2889c9b263082d0f79253454bf69810fae5aa0afa4e6d6edb2c9762f9f2d509b77afc4e8640b720b85ed9aa493a6e3bd48c505dfe05d34d2798621bbd09faf08f938c1d126be6d6e0e3d253a1ab8069c3167bfb7029295e5651cb8132a87523e9da06ec73d6e1d22dd057243c36553732b3b75ca371b2b862f54f2125c0443b7a828a454eeb79f3175791c0ca7c0e7379c4aefe3e520f70e4401e5059c78bb74cc79e0e70747689dafbb2b1482ef41a51f5b177068dac37eb9e4a817b0894f767c55f6dea2b42c0ee29e0fd0bf5cf8fa1602fdac07b61cc0197e7efc3a2903717c61b8850f98579$k$),
    ('e3_pub', $k$-----BEGIN PUBLIC KEY-----
MIIBIDANBgkqhkiG9w0BAQEFAAOCAQ0AMIIBCAKCAQEAsyk9sbrfmpB4yVHkB8i7
jWhxMOE3NmS288cmR/dFkQr+JxqgyIzPPeOYhyOO03l3j1FbKVu1aTcHTlMPiTWu
Zq2ftNkuQbwNb905gxQa8oDWOo+9oyH8RYbOoHmceTK6Wm9BmsZSSY1nQnypskbv
MQ1hdK+32+7ilJtMSoEa1Ix7SyV0xMK/XRIe7eUFtirEsRZJtNFgNNLGU+AieWCT
3qqc0EoTCKOz5u+Wcr9lLis4EzTVRVzGVMZPv76lQRiNBz161EZJdrusHfGcjq1e
G/G/WrXZQh5YxwaplcNR5VOh2BYAWmEX8xJpDfO0oRnwxxXElDshPFoUWYM9Xy1Y
8wIBAw==
-----END PUBLIC KEY-----$k$),
    ('e3_ok', $k$57035bea04da2e63335d441e65c5df292514725c58996c696480d9f34a183c078f4235786031322fcaddf81af3ef294a8b4c908a5a1e3ebd3314d435783c641f990c99e870746996c5be5631e1be6f923eda011088bff4f00e8a201590394bd42035263cddc8caac79ded4ae87cb2bf152857b81b4655536a07a4a0d60ecd53ad36ac0f07abf288c4912e99819791c95861e8a7b5ae70dfaa0dfa02d609154e2b0622a94c6c3a571142d4539485b1681122b7a842c2c4db1dca798a79d2739bd9b9187bfc559b3a9d22dec95d06eb32ff26ff443099f0bc3543e1fd0450831bb894cdae2c911a7f20890b84f28a3f12328fc0c5ea73674e55973456baaf51511$k$),
    ('bb06_sig', $k$00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000032c38624845911817bf125c3cf15343cee1389f8cf02f754db49e56cd911d6f0f61546879109d15b4b2104b59ab9738fd8967e5edbcb92e8a2823cbe11e515e2bcbb58b0a6ebee50822a37b21fa6bcabb4733554a2$k$),
    ('bb06_token', $k$eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5IiwiZXhwIjo0MTAyNDQ0ODAwfQ.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAMsOGJIRZEYF78SXDzxU0PO4TifjO_kUS0xp-ozYNGaFQR4xUyigBb3NBrZ6De8YcW5nIVBmPz33r5lilwKR2OerzRuJHVhGHKB6y1X738ygcevlLbw$k$),
    ('pss_priv', $k$-----BEGIN PRIVATE KEY-----
MIIEvAIBADALBgkqhkiG9w0BAQoEggSoMIIEpAIBAAKCAQEAvO9hwE2kEfFrf2Tn
it4ev7byU5K3HwaBobz+hWlF+1It1veG5vTcdOOIBTptBjxV96tM5tyS/SVF25cB
aRVVjRLJAuwVNuRjs99m97X0lt3Gv/hfY3kA0j4dOSjl0ULbMnTEWqg3xiE53yDg
1GnurJN5AgUGgHb+18e6BKp1CnVz+TKO3ZZDqjV0I+b9FwggUz7VF+V86Y7/cfBA
0OQXhcnCT69HYL0iIjZo5kV9m2NDFx9QdT4zulxLgzHFq2bBaqHEfs24LoZbiNUY
57IXRQGnorJIqhUiMfxrn/ghctG/IY9ZXeQGKE9NQRETJhuM5z3WuNYXwyncbN68
2SoGcwIDAQABAoIBAADIvY8ew1+PsPKGaK+a3GXPTJIsObZXQJJ7RlMnbLLuVGJg
BJ9QxNl3WEktROaRuYmdnGQY5kNGtFOE/OyCuigru8nXUP85U3CbrMG6b5lwsjJ5
xWuURPyaZWSnVszXijFbarU1nYWk/ah/am93QRZWRlpLywsdc1FR8uOyEWpJsKsY
yCcS0lCJydidUp4/7Kkp4rhIsbJ5ean2C/VBVpGP2351Wa5M4fl9hiPnUI+FKDOW
WiJKFWqkLs1QKs5KsnoQHf2fbZb9ZUAvgvLoeRDu17ZRO0pBfQ25a/4LpYxJFcZq
nfRcEe1mRCzauwETokV2nUr3niA2gy8glpJVI4ECgYEA9rkX8eqrnCaSrNS2etUa
VcA5GZo5VR2q4bXybbQaBNi2Q7Qm471g7vIgQRrszMWdVO29NNk5mXO6ELXBaZmz
fYe4W1QMLTH22bJb0AZGvQdJAZUTkZbgDPDifGuOX95rGEj2+krZFWwnNb5HrVWW
QxgDGmqQAQwni1lntHT7xccCgYEAxAoIfvellUsRecDps5njhckYqmPe/yrJogeO
14i+8dQ0YhM1b0LUaWzLNYJym1fr1t9zT7YqhsUg3wqk9BuUbJUtIAACSLX8dQ46
GW1B9wkZ7H2sQtoBBu+2b7TAuh03iTKUQet9fmkmnBpnpf76m5mwnLMQWqOVtS4I
QeCwSfUCgYBvynhWDg3KCBRHqW4xg+OV3S5CMoYt0e5+rRF2sbdkYMldLgC9Ci8k
taL1vPx04EmklMA5dP/LTwuMzL4hWhphE6DuCMwnok8GXvGI9X8R4X4r8F9YhXNp
ibAlzhpJyB7gdxcpW8a3FTVC/b++g1w9dGDblFNBlj9Iva7mrmbyOwKBgQCi3zcZ
zcSLWdgGEOnZZsRqVZ4himIuG61z6dWaaqlBn615wj3F139Eq7fVGDEBsTVmyzUx
h8ajO8pIpL5RdUyGPhZEnN1I7bH2ysAoeeaxSKV6HxtsW1U5HxWyjzkEJ9wJJ7WX
YwBbcx852JI+jq5FcpYSSo8OzxRFeB4yJWwxtQKBgQDi5DKAyWuO/qu8v/FhKb7I
XH6XCR3WNVNhm+5bsxV05LMhr4LpJ1LoOLqAB5W2ZauZnhK3ZW4nffNs9jUc8GGf
iA0KkK9AZjmD5HLqPbamsLJ4GiD5yKE2pT0qVe7wJ6764CFImlijCaXOFt14E7P1
R3dzWy7WcyBtkCWLaqDgYA==
-----END PRIVATE KEY-----$k$),
    ('pss_pub', $k$-----BEGIN PUBLIC KEY-----
MIIBIDALBgkqhkiG9w0BAQoDggEPADCCAQoCggEBALzvYcBNpBHxa39k54reHr+2
8lOStx8GgaG8/oVpRftSLdb3hub03HTjiAU6bQY8VferTObckv0lRduXAWkVVY0S
yQLsFTbkY7PfZve19Jbdxr/4X2N5ANI+HTko5dFC2zJ0xFqoN8YhOd8g4NRp7qyT
eQIFBoB2/tfHugSqdQp1c/kyjt2WQ6o1dCPm/RcIIFM+1RflfOmO/3HwQNDkF4XJ
wk+vR2C9IiI2aOZFfZtjQxcfUHU+M7pcS4MxxatmwWqhxH7NuC6GW4jVGOeyF0UB
p6KySKoVIjH8a5/4IXLRvyGPWV3kBihPTUEREyYbjOc91rjWF8Mp3GzevNkqBnMC
AwEAAQ==
-----END PUBLIC KEY-----$k$);
CREATE FUNCTION pg_temp.hx(n text) RETURNS bytea
LANGUAGE sql STABLE AS $$ SELECT pg_catalog.decode(pg_temp.k(n), 'hex') $$;

-- A PEM key is never an HMAC secret, whatever text surrounds it (openssl pkcs12 writes
-- "Bag Attributes" lines before the block; editors add a byte order mark).
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), E'Bag Attributes\n    friendlyName: api\n' || pg_temp.k('rsa_pub')),
                     E'Bag Attributes\n    friendlyName: api\n' || pg_temp.k('rsa_pub')),
                 '28000', NULL, 'HS256 token MACed with an RSA public PEM preceded by text, verified with that text: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.verify_signature('HS256', %L, '\x61'::bytea, crm_security.hmac('\x61'::bytea, pg_catalog.convert_to(%L, 'UTF8'), 'sha256'))$$,
                     E'subject=CN = api\n' || pg_temp.k('ec_pub'), E'subject=CN = api\n' || pg_temp.k('ec_pub')),
                 '28000', NULL, 'verify_signature HS256: an EC public PEM preceded by a subject line is not an HMAC secret');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.verify_signature('HS256', %L, '\x61'::bytea, crm_security.hmac('\x61'::bytea, pg_catalog.convert_to(%L, 'UTF8'), 'sha256'))$$,
                     E'\ufeff' || pg_temp.k('rsa_pub'), E'\ufeff' || pg_temp.k('rsa_pub')),
                 '28000', NULL, 'verify_signature HS256: an RSA public PEM after a byte order mark is not an HMAC secret');

-- Weak and malformed public keys given as PEM.
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.verify_signature('RS256', %L, %L::bytea, %L::bytea)$$,
                     pg_temp.k('e1_pub'), pg_temp.hx('e1_msg'), pg_temp.hx('e1_sig')),
                 '28000', NULL, 'RSA PEM key with public exponent 1 (signature = the padded message): refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.verify_signature('RS256', %L::jsonb, '\x61', '\x00')$$,
                     pg_catalog.jsonb_build_object('kty', 'RSA', 'n', pg_temp.kj('rsa_jwk') ->> 'n', 'e', 'AQ')),
                 '28000', NULL, 'RSA JWK with public exponent 1: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.verify_signature('ES256', %L, '\x61', '\x00')$$, pg_temp.k('ec_offcurve')),
                 '28000', NULL, 'EC PEM key whose point is not on P-256: refused');

-- RSASSA-PSS: salt length is the hash length and MGF1 uses the same hash (RFC 7518 3.5).
SELECT ok(crm_security.verify_signature('PS256', pg_temp.k('rsa_pub'), '\x6d657373616765', pg_temp.hx('pss_ok')),
          'PS256 with a 32-byte salt and MGF1-SHA256: true');
SELECT ok(NOT crm_security.verify_signature('PS256', pg_temp.k('rsa_pub'), '\x6d657373616765', pg_temp.hx('pss_salt0')),
          'PS256 with an empty salt: false');
SELECT ok(NOT crm_security.verify_signature('PS256', pg_temp.k('rsa_pub'), '\x6d657373616765', pg_temp.hx('pss_salt64')),
          'PS256 with a 64-byte salt: false');
SELECT ok(NOT crm_security.verify_signature('PS256', pg_temp.k('rsa_pub'), '\x6d657373616765', pg_temp.hx('pss_mgf1sha1')),
          'PS256 with MGF1-SHA1: false');

-- PKCS#1 v1.5 forgery in the style of Bleichenbacher 2006 against an e = 3 key: the
-- DigestInfo is followed by garbage instead of ending the block.
SELECT ok(crm_security.verify_signature('RS256', pg_temp.k('e3_pub'), '\x6d657373616765', pg_temp.hx('e3_ok')),
          'e = 3 key: a genuine RS256 signature is accepted');
SELECT ok(NOT crm_security.verify_signature('RS256', pg_temp.k('e3_pub'), '\x6d657373616765', pg_temp.hx('bb06_sig')),
          'e = 3 key: the cube-root forgery with trailing garbage is refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)', pg_temp.k('bb06_token'), pg_temp.k('e3_pub')),
                 '28000', NULL, 'e = 3 key: a token carrying the cube-root forgery is refused');

-- An RSASSA-PSS key (id-RSASSA-PSS) is for PS* only.
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.sign_message('RS256', %L, '\x61')$$, pg_temp.k('pss_priv')),
                 '28000', NULL, 'RSA-PSS key cannot sign RS256');
SELECT ok(crm_security.verify_signature('PS256', pg_temp.k('pss_pub'), '\x61',
              crm_security.sign_message('PS256', pg_temp.k('pss_priv'), '\x61')),
          'RSA-PSS key signs and verifies PS256');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.verify_signature('RS256', %L, '\x61', '\x00')$$, pg_temp.k('pss_pub')),
                 '28000', NULL, 'RSA-PSS public key cannot verify RS256');

SELECT * FROM finish();
ROLLBACK;
