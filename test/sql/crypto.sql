-- Crypto primitives: hmac, secure_compare, random_bytes, verify_signature, sign_message
-- errors with their DETAIL: the detail says why a token or key was refused
\set VERBOSITY default
\set ECHO none
\i test/sql/regress_keys.inc
\set ECHO all

-- RFC 4231 test case 2 (HMAC-SHA-256/384/512, key "Jefe")
SELECT encode(crm_security.hmac('what do ya want for nothing?', 'Jefe'), 'hex');
SELECT encode(crm_security.hmac('what do ya want for nothing?', 'Jefe', 'sha384'), 'hex');
SELECT encode(crm_security.hmac('what do ya want for nothing?'::bytea, 'Jefe'::bytea, 'SHA512'), 'hex');
-- RFC 4231 test case 1: 20-byte key of 0x0b, data "Hi There"
SELECT encode(crm_security.hmac('Hi There'::bytea, decode(repeat('0b', 20), 'hex')), 'hex');
-- an empty key and empty data are legal for the raw primitive
SELECT encode(crm_security.hmac(''::bytea, ''::bytea), 'hex');
SELECT crm_security.hmac('data', 'key', 'md5');
SELECT crm_security.hmac('data', 'key', 'none');
SELECT crm_security.hmac(NULL::bytea, 'key'::bytea) IS NULL AS strict;

SELECT crm_security.secure_compare('\x0102'::bytea, '\x0102'::bytea) AS equal,
       crm_security.secure_compare('\x0102'::bytea, '\x0103'::bytea) AS differ,
       crm_security.secure_compare('\x0102'::bytea, '\x010200'::bytea) AS longer,
       crm_security.secure_compare(''::bytea, ''::bytea) AS empty,
       crm_security.secure_compare('abc'::text, 'abc'::text) AS text_equal,
       crm_security.secure_compare('abc'::text, 'abd'::text) AS text_differ;

SELECT length(crm_security.random_bytes(32)) AS len,
       crm_security.random_bytes(16) <> crm_security.random_bytes(16) AS differ;
SELECT crm_security.random_bytes(0);
SELECT crm_security.random_bytes(-1);
SELECT crm_security.random_bytes(2000000000);

-- sign and verify with every algorithm and key form
CREATE TEMP TABLE sig_cases(alg text, priv text, pub text);
INSERT INTO sig_cases
SELECT a, (SELECT pem FROM regress_keys WHERE name = 'rsa_pem'), (SELECT pem FROM regress_keys WHERE name = 'rsa_pub')
  FROM unnest(ARRAY['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']) a
UNION ALL SELECT 'ES256', (SELECT pem FROM regress_keys WHERE name = 'ec_pem'), (SELECT pem FROM regress_keys WHERE name = 'ec_pub')
UNION ALL SELECT 'ES256', (SELECT pem FROM regress_keys WHERE name = 'ec_trad_pem'), (SELECT pem FROM regress_keys WHERE name = 'ec_crt')
UNION ALL SELECT 'RS256', (SELECT pem FROM regress_keys WHERE name = 'rsa_trad_pem'), (SELECT pem FROM regress_keys WHERE name = 'rsa_pub')
UNION ALL SELECT 'EdDSA', (SELECT pem FROM regress_keys WHERE name = 'ed_pem'), (SELECT pem FROM regress_keys WHERE name = 'ed_pub')
UNION ALL SELECT 'Ed25519', (SELECT pem FROM regress_keys WHERE name = 'ed_pem'), (SELECT pem FROM regress_keys WHERE name = 'ed_pub')
UNION ALL SELECT a, 'an HMAC secret of at least 32 bytes!', 'an HMAC secret of at least 32 bytes!'
  FROM unnest(ARRAY['HS256', 'HS384', 'HS512']) a;
SELECT alg,
       crm_security.verify_signature(alg, pub, 'message', s) AS good,
       crm_security.verify_signature(alg, pub, 'messagE', s) AS other_message,
       crm_security.verify_signature(alg, pub, 'message', s || '\x00'::bytea) AS longer_sig,
       crm_security.verify_signature(alg, pub, 'message', substring(s from 2)) AS shorter_sig,
       crm_security.verify_signature(alg, pub, 'message', ''::bytea) AS empty_sig,
       length(s) AS sig_len
  FROM (SELECT alg, pub, crm_security.sign_message(alg, priv, 'message') AS s FROM sig_cases) c;

-- ECDSA: all-zero r and s (CVE-2022-21449) and r = s = n are refused
SELECT crm_security.verify_signature('ES256', (SELECT pem FROM regress_keys WHERE name = 'ec_pub'),
       'message', decode(repeat('00', 64), 'hex')) AS zero_sig;
SELECT crm_security.verify_signature('ES256', (SELECT pem FROM regress_keys WHERE name = 'ec_pub'),
       'message', decode(repeat('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 2), 'hex')) AS r_s_n;

-- key/algorithm confusion and key rules
SELECT crm_security.verify_signature('HS256', (SELECT pem FROM regress_keys WHERE name = 'rsa_pub'), 'm', '\x00'::bytea);
SELECT crm_security.sign_message('HS256', (SELECT pem FROM regress_keys WHERE name = 'rsa_pub'), 'm');
SELECT crm_security.verify_signature('RS256', 'an HMAC secret of at least 32 bytes!', 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('ES384', (SELECT pem FROM regress_keys WHERE name = 'ec_pub'), 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('PS256', (SELECT pem FROM regress_keys WHERE name = 'ec_pub'), 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('EdDSA', (SELECT pem FROM regress_keys WHERE name = 'rsa_pub'), 'm', '\x00'::bytea);
SELECT crm_security.sign_message('RS256', (SELECT pem FROM regress_keys WHERE name = 'rsa_pub'), 'm');
SELECT crm_security.verify_signature('RS256', (SELECT pem FROM regress_keys WHERE name = 'rsa1024_pub'), 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('ES256', (SELECT pem FROM regress_keys WHERE name = 'k1_pub'), 'm', '\x00'::bytea);
SELECT crm_security.sign_message('RS256', (SELECT pem FROM regress_keys WHERE name = 'rsa_enc_pem'), 'm');
SELECT crm_security.verify_signature('HS256', 'only 31 bytes long secret value', 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('HS256', '{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}', 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('HS256', '', 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('RS256', '-----BEGIN PUBLIC KEY-----
garbage
-----END PUBLIC KEY-----', 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('RS256', '-----BEGIN OPENSSH PRIVATE KEY-----
x
-----END OPENSSH PRIVATE KEY-----', 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('none', 'an HMAC secret of at least 32 bytes!', 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('hs256', 'an HMAC secret of at least 32 bytes!', 'm', '\x00'::bytea);
SELECT crm_security.verify_signature(NULL, 'k', 'm', '\x00'::bytea) IS NULL AS strict;

-- JWKs
SELECT crm_security.verify_signature('HS256', '{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}'::jsonb, 'm',
       crm_security.sign_message('HS256', '{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}'::jsonb, 'm')) AS oct_jwk;
SELECT crm_security.verify_signature('HS384', '{"kty":"oct","alg":"HS256","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('HS256', '{"kty":"oct","use":"enc","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('HS256', '{"kty":"oct","key_ops":["sign"],"k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('HS256', '{"kty":"oct","k":"AAAA"}'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('HS256', '{"kty":"oct","k":"AAAA="}'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('HS256', '{"kty":"oct"}'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('HS256', '{"kty":"XYZ"}'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('HS256', '[1,2]'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('HS256', '"str"'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('ES256', '{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('ES256', '{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('ES256', '{"kty":"EC","crv":"secp256k1","x":"AAAA","y":"AAAA"}'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('RS256', '{"kty":"RSA","n":"AQAB","e":"AQAB"}'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('EdDSA', '{"kty":"OKP","crv":"X25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.sign_message('HS256', '{"keys":[{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"}]}'::jsonb, 'm');
SELECT crm_security.verify_signature('HS256', '{"keys":"x"}'::jsonb, 'm', '\x00'::bytea);
SELECT crm_security.verify_signature('HS256', '{"keys":[]}'::jsonb, 'm', '\x00'::bytea);
-- a JWKS whose only member is unusable says why it was skipped
SELECT crm_security.verify_signature('HS256', '{"keys":[{"kty":"oct","k":"AAAA"}]}'::jsonb, 'm', '\x00'::bytea);

DROP TABLE regress_keys;
