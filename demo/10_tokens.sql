\echo
\echo '################################################################'
\echo '# Chapter 1. Tokens: how the database knows who is asking'
\echo '#   Northwind''s identity provider signs a JWT for every user. The database checks the'
\echo '#   signature itself (C, OpenSSL), so a bug in the API server cannot invent a user.'
\echo '################################################################'
\echo
\echo '--- 1. Tokens: sign and verify, all 13 JOSE algorithms, in C with OpenSSL ---'
\set VERBOSITY default
-- Keys are made in SQL (or imported as PEM, JWK or JWKS).
CREATE TEMP TABLE demo_keys AS
  SELECT a AS alg, crm_security.generate_jwk(a, 'demo-' || lower(a)) AS jwk
    FROM unnest(ARRAY['HS256', 'RS256', 'PS256', 'ES256', 'ES384', 'EdDSA']) a;

-- A token per algorithm, verified with the public key only:
SELECT alg,
       left(tok, 40) || '...' AS token,
       crm_security.jwt_verify(tok, CASE WHEN alg = 'HS256' THEN jwk ELSE crm_security.jwk_public(jwk) END) AS claims
  FROM (SELECT alg, jwk,
               crm_security.jwt_sign(jsonb_build_object('sub', 'alice', 'tenant_id', 'acme',
                                                        'exp', extract(epoch FROM now() + interval '1 hour')::bigint),
                                     jwk, alg) AS tok
          FROM demo_keys) t;

\echo
\echo '--- 2. A JWKS, the way an identity provider publishes it: the key is picked by kid ---'
CREATE TEMP TABLE demo_jwks AS
  SELECT jsonb_build_object('keys', jsonb_agg(crm_security.jwk_public(jwk))) AS jwks
    FROM demo_keys WHERE alg <> 'HS256';
SELECT jsonb_array_length(jwks->'keys') AS keys_published,
       jsonb_pretty(jsonb_path_query_first(jwks, '$.keys[*] ? (@.kid == "demo-es256")')) AS one_of_them
  FROM demo_jwks;
CREATE TEMP TABLE demo_token AS
  SELECT crm_security.jwt_sign('{"sub":"bob","aud":"crm"}', jwk, 'ES256') AS tok
    FROM demo_keys WHERE alg = 'ES256';
SELECT d.* FROM demo_token, crm_security.jwt_decode(tok) d;
SELECT crm_security.jwt_verify(tok, jwks, algorithms => ARRAY['ES256', 'RS256'], audience => 'crm') AS verified_claims
  FROM demo_token, demo_jwks;

\echo
\echo '--- 3. What is refused, and why ---'
\echo 'A forged token: the payload changed after signing'
SELECT demo_refused($q$
  SELECT crm_security.jwt_verify(split_part(tok, '.', 1) || '.' ||
                                 rtrim(translate(encode('{"sub":"mallory","aud":"crm"}', 'base64'), '+/', '-_'), '=') || '.' ||
                                 split_part(tok, '.', 3), jwks)
    FROM demo_token, demo_jwks$q$) AS forged_payload;
\echo 'An expired token'
SELECT demo_refused($q$
  SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"sub":"alice","exp":1700000000}', jwk, 'HS256'), jwk)
    FROM demo_keys WHERE alg = 'HS256'$q$) AS expired;
\echo 'An unsecured token ("alg": "none")'
SELECT demo_refused($q$
  SELECT crm_security.jwt_verify('eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZG1pbiJ9.', jwks) FROM demo_jwks$q$) AS alg_none;
\echo 'Algorithm confusion: an HS256 token "signed" with public key material as the HMAC secret'
SELECT demo_refused($q$
  SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"sub":"admin"}', crm_security.jwk_public(jwk)->>'n', 'HS256'),
                                 crm_security.jwk_public(jwk))
    FROM demo_keys WHERE alg = 'RS256'$q$) AS algorithm_confusion;
\echo 'A token signed by another key that claims the same kid'
SELECT demo_refused($q$
  SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"sub":"eve"}', crm_security.generate_jwk('ES256', 'demo-es256'), 'ES256'),
                                 jwks)
    FROM demo_jwks$q$) AS same_kid_other_key;
DROP TABLE demo_keys, demo_jwks, demo_token;
