-- generate_jwk, jwk_public, pem_to_jwk
\set VERBOSITY default
\set ECHO none
\i test/sql/regress_keys.inc
\set ECHO all

-- every algorithm: a private JWK that signs, whose public half verifies
SELECT a AS alg, j->>'kty' AS kty, j->>'crv' AS crv, j->>'alg' = a AS bound, j->>'kid' AS kid,
       CASE WHEN a NOT LIKE 'HS%' THEN crm_security.jwk_public(j) ?| ARRAY['d', 'p', 'q', 'dp', 'dq', 'qi'] END AS public_has_private,
       crm_security.jwt_verify(crm_security.jwt_sign('{"sub":"k"}', j, a),
                               CASE WHEN a LIKE 'HS%' THEN j ELSE crm_security.jwk_public(j) END) AS verified
  FROM unnest(ARRAY['HS256', 'HS384', 'HS512', 'RS256', 'PS256', 'ES256', 'ES384', 'ES512', 'EdDSA']) a,
       LATERAL (SELECT crm_security.generate_jwk(a, 'kid-' || a) AS j) s;
-- HMAC secrets are as long as the hash output; two keys never repeat
SELECT length(translate(crm_security.generate_jwk('HS512')->>'k', '-_', '+/')) AS k_chars,
       crm_security.generate_jwk('ES256') <> crm_security.generate_jwk('ES256') AS distinct_keys;
-- the public JWK of a PEM key verifies what the PEM private key signed
SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"sub":"pem"}', (SELECT pem FROM regress_keys WHERE name = 'rsa_pem'), 'RS256'),
                               crm_security.pem_to_jwk((SELECT pem FROM regress_keys WHERE name = 'rsa_pub'), 'rsa-1'));
SELECT crm_security.pem_to_jwk(pem, 'ec-1') FROM regress_keys WHERE name = 'ec_crt';
SELECT crm_security.pem_to_jwk(pem) - 'x' FROM regress_keys WHERE name = 'ed_pub';

SELECT crm_security.generate_jwk('none');
SELECT crm_security.generate_jwk(NULL);
SELECT crm_security.jwk_public(crm_security.generate_jwk('HS256'));
SELECT crm_security.jwk_public('{"keys":[]}');
SELECT crm_security.jwk_public('{"kty":"EC"}');
SELECT crm_security.pem_to_jwk('an HMAC secret of at least 32 bytes!');
SELECT crm_security.pem_to_jwk(NULL) IS NULL AS null_in_null_out;

DROP TABLE regress_keys;
