-- Key store: add_jwt_key, import_jwks, disable_jwt_key, validation, privileges.
BEGIN;
SELECT plan(47);

-- Fixed test keys (generated for these tests only).
CREATE TEMP TABLE ks_keys(name text PRIMARY KEY, v text);
INSERT INTO ks_keys VALUES
('rsa', '-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA6jRCMkyPWeaJvfyt4mlH
mdJ/PJxxGRIZMHolcCCqK013dzfzMUsLVLPj8OqcGolQilVVN/QEetXNN0cgRs/O
uc56NYWEkxLM2iz+MCc7LFSLgHknhGntO+MLOX2yOHQ4cIad62fH93phZxmmD1DK
9EBUPMWBMZd/yHUX9yFZCSWXoweGp3khgf4nl6jRw23Ysucb/kdH2QOZLprGsk1r
bpzeSjizKBFRSHJh7FeoR2lejTvfFIHDpo/GNSMHGE2ymqEK0AcLa4Z9LL3ZokGP
q9/9rQJYDeP58+qgpz0fwbYYGT0rYXD9fqRcvOGosoV+sdKqD5+jKP3Yt0q2Bpj7
bwIDAQAB
-----END PUBLIC KEY-----
'),
('rsa1024', '-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDEb+CXZ34mjMRknia4Ows3Vt/Z
J+/GET9DM7YtTNUCxFN1kw3tcUTTkVd5LceVgZlMck4+HzhvK7L1P/EfLvC92rlT
qItIDBVL99zkmTjRE+KeqA9o40YfVX4k8b+1daTwiJESHvUMmHEC6uIwTFPpN8qL
QNWWQ4oOI0BY9wxxDwIDAQAB
-----END PUBLIC KEY-----
'),
('ec', '{"kty": "EC", "crv": "P-256", "x": "Jbi3NUU366K5NA-H5_XfHw3vcUJs2ZiBjQpcwi6IRF8", "y": "QLwm0jVeeHu2s8tfHoQ-kCqsEM5EQFnsWwCfyEuKF0o"}'),
('ec_priv', '{"kty": "EC", "crv": "P-256", "x": "Jbi3NUU366K5NA-H5_XfHw3vcUJs2ZiBjQpcwi6IRF8", "y": "QLwm0jVeeHu2s8tfHoQ-kCqsEM5EQFnsWwCfyEuKF0o", "d": "MUIgM2BK1OiZLmxIOhp89clCEdPbqQEXBHyb2mD-JgI"}');
GRANT SELECT ON ks_keys TO PUBLIC;

-- add_jwt_key with a secret, a PEM and a JWK
SELECT lives_ok($$SELECT crm_security.add_jwt_key('ks_hs', 'HS256', repeat('k', 32))$$,
    'an HS256 secret of 32 bytes is accepted');
SELECT lives_ok($$SELECT crm_security.add_jwt_key('ks_rs', 'RS256', (SELECT v FROM ks_keys WHERE name = 'rsa'), 'https://issuer.example')$$,
    'an RSA 2048 public key PEM is accepted for RS256');
SELECT lives_ok($$SELECT crm_security.add_jwt_key('ks_ec', (SELECT v FROM ks_keys WHERE name = 'ec')::jsonb)$$,
    'a public EC JWK is accepted');
SELECT results_eq($$SELECT kid, algorithm, issuer, enabled FROM crm_security.jwt_keys WHERE kid LIKE 'ks\_%' ORDER BY kid$$,
    $$VALUES ('ks_ec', 'ES256', NULL, true), ('ks_hs', 'HS256', NULL, true), ('ks_rs', 'RS256', 'https://issuer.example', true)$$,
    'the rows hold kid, algorithm (ES256 inferred from the curve), issuer, enabled');
SELECT ok((SELECT created_at IS NOT NULL AND not_before IS NULL AND not_after IS NULL FROM crm_security.jwt_keys WHERE kid = 'ks_hs'),
    'created_at is filled in, the validity window is open');
SELECT lives_ok($$SELECT crm_security.add_jwt_key('ks_win', 'HS512', repeat('w', 64), NULL, now() - interval '1 day', now() + interval '1 day')$$,
    'a key with a validity window');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_badwin', 'HS256', repeat('w', 32), NULL, now(), now() - interval '1 day')$$,
    '23514', NULL, 'a window that ends before it starts is refused');

-- refused keys
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_hs', 'HS256', repeat('x', 32))$$,
    '23505', NULL, 'a duplicate kid is refused');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', 'HS256', repeat('k', 31))$$,
    '28000', NULL, 'an HMAC secret shorter than 32 bytes is refused');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', 'HS256', (SELECT v FROM ks_keys WHERE name = 'rsa'))$$,
    '28000', NULL, 'an RSA public key PEM is never an HMAC secret (algorithm confusion)');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', 'RS256', (SELECT v FROM ks_keys WHERE name = 'rsa1024'))$$,
    '28000', NULL, 'an RSA key of 1024 bits is refused');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', 'ES256', (SELECT v FROM ks_keys WHERE name = 'rsa'))$$,
    '28000', NULL, 'an RSA key is refused for ES256');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', 'RS256', repeat('k', 40))$$,
    '28000', NULL, 'a secret is refused for RS256');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', 'HS999', repeat('k', 40))$$,
    '22023', 'unrecognized algorithm "HS999"', 'an unknown algorithm is refused');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', 'none', repeat('k', 40))$$,
    '22023', NULL, 'the algorithm none is refused');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', (SELECT v FROM ks_keys WHERE name = 'ec_priv')::jsonb)$$,
    '22023', 'the key store holds public keys only', 'a private EC JWK is refused');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', '{"keys": []}'::jsonb)$$,
    '22023', 'a JWKS is not one key', 'a JWKS is refused by add_jwt_key');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', '{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}'::jsonb)$$,
    '28000', NULL, 'an EC JWK off the curve is refused');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', '{"kty": "oct", "k": "c2hvcnQ", "alg": "HS256"}'::jsonb)$$,
    '28000', NULL, 'a short oct JWK is refused');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', '[1, 2]'::jsonb)$$,
    '22023', NULL, 'a JSON array is not a JWK');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', (SELECT v FROM ks_keys WHERE name = 'ec')::jsonb || '{"kid": "other"}')$$,
    '22023', NULL, 'a JWK whose kid differs is refused');
SELECT throws_ok($$SELECT crm_security.add_jwt_key(NULL, 'HS256', repeat('k', 32))$$,
    '22023', NULL, 'a NULL kid is refused');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', NULL::text, repeat('k', 32))$$,
    '22023', NULL, 'a NULL algorithm is refused');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', 'HS256', NULL)$$,
    '22023', NULL, 'a NULL key is refused');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('', 'HS256', repeat('k', 32))$$,
    '23514', NULL, 'an empty kid is refused');
SELECT throws_ok($$INSERT INTO crm_security.jwt_keys (kid, algorithm, key) VALUES ('ks_direct', 'HS256', 'short')$$,
    '28000', NULL, 'the row trigger validates keys written directly into the table');
SELECT throws_ok($$UPDATE crm_security.jwt_keys SET algorithm = 'HS256' WHERE kid = 'ks_rs'$$,
    '28000', NULL, 'an update that binds a key to the wrong algorithm is refused');

-- import_jwks: a Supabase-style JWKS pasted as is
SELECT is(crm_security.import_jwks(jsonb_build_object('keys', jsonb_build_array(
        (SELECT v FROM ks_keys WHERE name = 'ec')::jsonb || '{"kid": "ks_jwks1", "alg": "ES256", "use": "sig", "key_ops": ["verify"], "ext": true}',
        jsonb_build_object('kty', 'oct', 'kid', 'ks_jwks2', 'k', rtrim(translate(encode(convert_to(repeat('j', 32), 'UTF8'), 'base64'), '+/', '-_'), '='), 'alg', 'HS256'),
        jsonb_build_object('kty', 'RSA', 'kid', 'ks_enc', 'use', 'enc', 'n', 'AQAB', 'e', 'AQAB'))),
        'https://project.supabase.co/auth/v1'),
    2, 'import_jwks imports the signature keys and skips encryption keys');
SELECT results_eq($$SELECT kid, algorithm, issuer FROM crm_security.jwt_keys WHERE kid LIKE 'ks\_jwks%' ORDER BY kid$$,
    $$VALUES ('ks_jwks1', 'ES256', 'https://project.supabase.co/auth/v1'), ('ks_jwks2', 'HS256', 'https://project.supabase.co/auth/v1')$$,
    'the imported keys carry their algorithm and the issuer');
SELECT crm_security.disable_jwt_key('ks_jwks1');
SELECT is(crm_security.import_jwks(jsonb_build_object('keys', jsonb_build_array(
        (SELECT v FROM ks_keys WHERE name = 'ec')::jsonb || '{"kid": "ks_jwks1", "alg": "ES256"}')),
        'https://project.supabase.co/auth/v1'),
    1, 'import_jwks updates a key that exists (same kid and issuer)');
SELECT results_eq($$SELECT issuer, enabled, jwk->>'use' FROM crm_security.jwt_keys WHERE kid = 'ks_jwks1'$$,
    $$VALUES ('https://project.supabase.co/auth/v1'::text, false, NULL::text)$$,
    'the update replaces the material and leaves a disabled key disabled');
SELECT throws_ok($$SELECT crm_security.import_jwks('{"keys": [{"kty": "oct", "k": "AAAA"}]}')$$,
    '22023', NULL, 'a JWKS key without kid is refused');
SELECT throws_ok($$SELECT crm_security.import_jwks('{"kty": "oct"}')$$,
    '22023', 'invalid JWKS', 'a JWK is not a JWKS');
SELECT throws_ok($$SELECT crm_security.import_jwks('{"keys": [1]}')$$,
    '22023', 'invalid JWKS', 'a JWKS member that is not an object is refused');
SELECT throws_ok($$SELECT crm_security.import_jwks(NULL)$$,
    '22023', NULL, 'a NULL JWKS is refused');
SELECT throws_ok($$SELECT crm_security.import_jwks(jsonb_build_object('keys', jsonb_build_array((SELECT v FROM ks_keys WHERE name = 'ec_priv')::jsonb || '{"kid": "ks_p"}')))$$,
    '22023', NULL, 'a JWKS with a private key is refused');

-- disable_jwt_key
SELECT lives_ok($$SELECT crm_security.disable_jwt_key('ks_hs')$$, 'disable_jwt_key');
SELECT is((SELECT enabled FROM crm_security.jwt_keys WHERE kid = 'ks_hs'), false, 'the key is disabled');
SELECT throws_ok($$SELECT crm_security.disable_jwt_key('ks_nope')$$, '42704', NULL, 'disabling an unknown kid raises');
SELECT throws_ok($$SELECT crm_security.disable_jwt_key(NULL)$$, '22023', NULL, 'disabling a NULL kid raises');
SELECT throws_ok($$SELECT crm_security.add_jwt_key(repeat('k', 257), 'HS256', repeat('k', 32))$$,
    '23514', NULL, 'a kid longer than 256 bytes is refused');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', '{"kty": "EC", "crv": "P-256", "x": 1}'::jsonb)$$,
    '28000', NULL, 'a JWK with a member of the wrong type is refused');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_x', 'RS256', '-----BEGIN PUBLIC KEY-----' || repeat('A', 100000) || '-----END PUBLIC KEY-----')$$,
    '28000', NULL, 'an oversized, malformed PEM is refused');

-- privileges: the key store is not for PUBLIC
CREATE ROLE regress_ks_user;
SET LOCAL ROLE regress_ks_user;
SELECT throws_ok($$SELECT * FROM crm_security.jwt_keys$$, '42501', NULL, 'an unprivileged role cannot read jwt_keys');
SELECT throws_ok($$SELECT crm_security.add_jwt_key('ks_evil', 'HS256', repeat('e', 32))$$, '42501', NULL,
    'an unprivileged role cannot add keys');
SELECT throws_ok($$SELECT crm_security.disable_jwt_key('ks_rs')$$, '42501', NULL,
    'an unprivileged role cannot disable keys');
RESET ROLE;
SELECT ok(NOT has_function_privilege('regress_ks_user', 'crm_security.import_jwks(jsonb, text)', 'EXECUTE'),
    'import_jwks is not executable by PUBLIC');

SELECT * FROM finish();
ROLLBACK;
