-- JWT and JWS: jwt_sign, jwt_verify, jwt_decode, jws_verify
-- errors with their DETAIL: the detail says why a token or key was refused
\set VERBOSITY default
\set ECHO none
\i test/sql/regress_keys.inc
\set ECHO all
\set secret 'a shared secret that is 32 bytes+'

-- HMAC signing is deterministic: the token itself is part of the expected output
SELECT crm_security.jwt_sign('{"sub":"user-1","exp":4102444800,"aud":["crm","billing"],"iss":"https://auth.example.com/"}', :'secret') AS tok \gset
SELECT :'tok';
SELECT crm_security.jwt_verify(:'tok', :'secret');
SELECT crm_security.jwt_verify(:'tok', :'secret', ARRAY['HS256'], 'crm', 'https://auth.example.com/');
SELECT * FROM crm_security.jwt_decode(:'tok');

-- claim checks
SELECT crm_security.jwt_verify(:'tok', :'secret', audience => 'other');
SELECT crm_security.jwt_verify(:'tok', :'secret', issuer => 'https://auth.example.com');
SELECT crm_security.jwt_verify(:'tok', :'secret', algorithms => ARRAY['HS512']);
SELECT crm_security.jwt_verify(:'tok', :'secret', algorithms => ARRAY['none']);
SELECT crm_security.jwt_verify(:'tok', :'secret', algorithms => ARRAY[]::text[]);
SELECT crm_security.jwt_verify(:'tok', :'secret', algorithms => ARRAY['HS256', NULL]);
SELECT crm_security.jwt_verify(:'tok', :'secret', algorithms => ARRAY['HS256', 'hs256']);
SELECT crm_security.jwt_verify(:'tok', '{}'::jsonb);
SELECT crm_security.jwt_verify(:'tok', '{"keys":[null, 1, "x", []]}'::jsonb);
SELECT crm_security.jwt_verify(:'tok', :'secret', leeway => '-1 second');
SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"exp":1000000000}', :'secret'), :'secret');
SELECT crm_security.jwt_verify(crm_security.jwt_sign(jsonb_build_object('exp', extract(epoch FROM now()) - 30), :'secret'), :'secret', leeway => '1 minute') ? 'exp' AS within_leeway;
SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"nbf":4102444800}', :'secret'), :'secret');
SELECT crm_security.jwt_verify(crm_security.jwt_sign(jsonb_build_object('nbf', extract(epoch FROM now()) + 30), :'secret'), :'secret', leeway => '1 minute') ? 'nbf' AS within_leeway;
SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"exp":"4102444800"}', :'secret'), :'secret');
SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"nbf":true}', :'secret'), :'secret');
SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"aud":"crm"}', :'secret'), :'secret', audience => 'crm');
SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"aud":42}', :'secret'), :'secret');
SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"sub":"x"}', :'secret'), :'secret', audience => 'crm');
SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"iss":1}', :'secret'), :'secret');

-- unsecured and tampered tokens
SELECT crm_security.jwt_verify('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTEifQ.', :'secret');
SELECT crm_security.jwt_verify('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTEifQ.c2ln', :'secret');
SELECT crm_security.jwt_verify('eyJhbGciOiJOb05lIn0.eyJzdWIiOiJ1c2VyLTEifQ.c2ln', :'secret');
SELECT crm_security.jwt_verify(split_part(:'tok', '.', 1) || '.eyJzdWIiOiJhZG1pbiJ9.' || split_part(:'tok', '.', 3), :'secret');
SELECT crm_security.jwt_verify(:'tok', 'another secret that is 32 bytes!!');
-- header {"alg":"HS256","crit":["exp"]}
SELECT crm_security.jwt_verify(crm_security.jwt_sign('{}', :'secret', 'HS256', '{"crit":["exp"]}'), :'secret');
SELECT crm_security.jwt_verify('eyJhbGciOiJIUzI1NiIsImNyaXQiOlsiZXhwIl19.e30.c2ln', :'secret');
-- header {"alg":"HS256","alg":"none"} (duplicate member)
SELECT crm_security.jwt_verify('eyJhbGciOiJIUzI1NiIsImFsZyI6Im5vbmUifQ.e30.c2ln', :'secret');

-- malformed tokens
SELECT crm_security.jwt_verify('', :'secret');
SELECT crm_security.jwt_verify('abc', :'secret');
SELECT crm_security.jwt_verify('a.b', :'secret');
SELECT crm_security.jwt_verify('a.b.c.d', :'secret');
SELECT crm_security.jwt_verify('.e30.c2ln', :'secret');
SELECT crm_security.jwt_verify(:'tok' || '=', :'secret');
SELECT crm_security.jwt_verify(replace(:'tok', '.', ' .'), :'secret');
SELECT crm_security.jwt_verify('eyJhbGciOiJIUzI1NiJ9+.e30.c2ln', :'secret');
SELECT crm_security.jwt_verify('WzFd.e30.c2ln', :'secret');          -- header [1]
SELECT crm_security.jwt_verify('bm90IGpzb24.e30.c2ln', :'secret');   -- header "not json"
SELECT crm_security.jwt_verify('_-8.e30.c2ln', :'secret');           -- invalid UTF-8
SELECT crm_security.jwt_verify('eyJhbGciOjF9.e30.c2ln', :'secret');  -- alg is a number
SELECT crm_security.jwt_verify('eyJ0eXAiOiJKV1QifQ.e30.c2ln', :'secret');  -- no alg
SELECT crm_security.jwt_verify('eyJhbGciOiJIUzI1NiIsImtpZCI6MX0.e30.c2ln', :'secret');  -- kid is a number
SELECT crm_security.jwt_verify(repeat('x', 70000), :'secret');
SELECT crm_security.jwt_verify(NULL, :'secret');
SELECT crm_security.jwt_verify(:'tok', NULL::text);
SELECT crm_security.jwt_decode('garbage');
-- decoding shows what verification refuses: an unsecured token, a critical header
SELECT * FROM crm_security.jwt_decode('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTEifQ.');
SELECT header FROM crm_security.jwt_decode('eyJhbGciOiJIUzI1NiIsImNyaXQiOlsiZXhwIl19.e30.c2ln');
SELECT crm_security.jwt_decode(NULL) IS NULL AS strict;
SET crm_security.max_token_length = 100;
SET crm_security.max_token_length = 256;
SELECT crm_security.jwt_verify(:'tok' || repeat('A', 100), :'secret');
RESET crm_security.max_token_length;

-- payloads that must be refused after the signature verified
CREATE FUNCTION pg_temp.signed(payload text, secret text) RETURNS text LANGUAGE sql AS $$
  SELECT t || '.' || rtrim(translate(encode(crm_security.hmac(t, secret), 'base64'), '+/', '-_'), '=')
    FROM (SELECT 'eyJhbGciOiJIUzI1NiJ9.' || rtrim(translate(encode(convert_to(payload, 'UTF8'), 'base64'), E'+/\n', '-_'), '=') AS t) s
$$;
SELECT crm_security.jwt_verify(pg_temp.signed('{"ok":true}', :'secret'), :'secret');
SELECT crm_security.jwt_verify(pg_temp.signed('[]', :'secret'), :'secret');
SELECT crm_security.jwt_verify(pg_temp.signed('"a string"', :'secret'), :'secret');
SELECT crm_security.jwt_verify(pg_temp.signed('{"a":1,"a":2}', :'secret'), :'secret');
SELECT crm_security.jwt_verify(pg_temp.signed('{"a":' || repeat('[', 100) || repeat(']', 100) || '}', :'secret'), :'secret');
SELECT crm_security.jwt_verify(pg_temp.signed('{"a":' || repeat('[', 10000) || '}', :'secret'), :'secret');
SELECT crm_security.jwt_verify(pg_temp.signed('{"n":1e100000}', :'secret'), :'secret');
SELECT crm_security.jwt_verify(pg_temp.signed('{"n":' || repeat('9', 300) || '}', :'secret'), :'secret');
SELECT crm_security.jwt_verify(pg_temp.signed('{"s":"\u0000"}', :'secret'), :'secret');
SELECT crm_security.jwt_verify(pg_temp.signed('', :'secret'), :'secret');
SELECT crm_security.jwt_verify(pg_temp.signed('{"exp":1e300}', :'secret'), :'secret');
SELECT crm_security.jwt_verify(pg_temp.signed('{"exp":-1e300}', :'secret'), :'secret');
SELECT crm_security.jwt_verify(pg_temp.signed('{"exp":4102444800.5,"nbf":0.5}', :'secret'), :'secret');

-- asymmetric keys: PEM, JWK, JWKS
SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"sub":"rs"}', pem, 'RS256'),
                               (SELECT pem FROM regress_keys WHERE name = 'rsa_pub'))
  FROM regress_keys WHERE name = 'rsa_pem';
SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"sub":"es"}', pem, 'ES256'),
                               (SELECT pem FROM regress_keys WHERE name = 'ec_crt'))
  FROM regress_keys WHERE name = 'ec_pem';
-- the algorithm-confusion attack: an HS256 token whose secret is the public key's PEM text
SELECT crm_security.jwt_verify(t || '.' || rtrim(translate(encode(crm_security.hmac(t, pem), 'base64'), '+/', '-_'), '='), pem)
  FROM regress_keys, (SELECT 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9' AS t) s WHERE name = 'rsa_pub';
SELECT crm_security.jwt_verify(crm_security.jwt_sign('{"sub":"ed"}', pem, 'EdDSA'),
                               (SELECT pem FROM regress_keys WHERE name = 'ed_pub'), ARRAY['ES256'])
  FROM regress_keys WHERE name = 'ed_pem';

\set jwk '{"kty":"oct","kid":"k1","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}'
SELECT crm_security.jwt_sign('{"sub":"jwk"}', :'jwk'::jsonb) AS jwktok \gset
SELECT header FROM crm_security.jwt_decode(:'jwktok');
SELECT crm_security.jwt_verify(:'jwktok', :'jwk'::jsonb);
SELECT crm_security.jwt_verify(:'jwktok', jsonb_build_object('keys', jsonb_build_array(
         '{"kty":"oct","kid":"k0","k":"b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXI"}'::jsonb, :'jwk'::jsonb)));
SELECT crm_security.jwt_verify(:'jwktok', jsonb_build_object('keys', jsonb_build_array(
         '{"kty":"oct","kid":"k0","k":"b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXI"}'::jsonb)));
SELECT crm_security.jwt_sign('{"sub":"x"}', :'jwk'::jsonb, 'HS512');
SELECT crm_security.jwt_sign('{"sub":"x"}', :'secret', 'none');
SELECT crm_security.jwt_sign('[1]', :'secret');
SELECT crm_security.jwt_sign('{"sub":"x"}', :'secret', 'HS256', '{"alg":"HS512"}');
SELECT crm_security.jwt_sign('{"sub":"x"}', :'secret', 'HS256', '{"typ":"at+jwt","cty":"x"}') AS hdrtok \gset
SELECT header FROM crm_security.jwt_decode(:'hdrtok');
-- a JWKS without a usable key says why its members were skipped
SELECT crm_security.jwt_verify(:'hdrtok', '{"keys":[{"kty":"oct","k":"AAAA"},{"kty":"EC","crv":"P-256"}]}'::jsonb);
SELECT crm_security.jwt_sign(NULL, :'secret');

-- JWS with any payload (RFC 7515 A.1 is a JWT whose exp is in the past)
SELECT convert_from(crm_security.jws_verify(crm_security.jwt_sign('{"x":1}', :'secret'), :'secret'), 'UTF8');
SELECT crm_security.jws_verify('eyJhbGciOiJIUzI1NiJ9..c2ln', :'secret');
SELECT crm_security.jws_verify('eyJhbGciOiJub25lIn0.Zm9v.', '{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}'::jsonb);

DROP TABLE regress_keys;
