-- RFC 7515 Appendix A: the worked examples of JSON Web Signature, byte for byte.
-- A.1 HS256, A.2 RS256, A.3 ES256, A.4 ES512 verify; A.5 (alg none) is refused.  The
-- deterministic ones (A.1 HMAC, A.2 RSASSA-PKCS1-v1_5) are also re-signed by sign_message
-- and must reproduce the RFC's signature exactly.

BEGIN;
SELECT plan(33);

CREATE TEMP TABLE rfc (name text PRIMARY KEY, val text NOT NULL);
INSERT INTO rfc VALUES
    -- {"typ":"JWT",\r\n "alg":"HS256"} . {"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}
    ('a1', 'eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'),
    ('a1_jwk', '{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}'),
    ('a2', 'eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw'),
    ('a2_jwk', '{"kty":"RSA","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB"}'),
    ('a2_private', '{"kty":"RSA","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB","d":"Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ","p":"4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc","q":"uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc","dp":"BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu1R6HsJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0","dq":"h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU","qi":"IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U"}'),
    -- The A.2 public key as an SPKI PEM.
    ('a2_pem', '-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAofgWCuLjybRlzo0tZWJj
NiuSfb4p4fAkd/wWJcyQoTbji9k0l8W26mPddxHmfHQp+Vaw+4qPCJrcS2mJPMEz
P1Pt0Bm4d4QlL+yRT+SFd2lZS+pCgNMsD1W/YpRPEwOWvG6b32690r2jZ47soMZo
9wGzjb/7OMg0LOL+bSf63kpaSHSXndS5z5rexMdbBYUsLA9e+KXBdQOS+UTo7WTB
EMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6/I5IhlJH7aGhyxX
FvUK+DWNmoudF8NAco9/h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXp
oQIDAQAB
-----END PUBLIC KEY-----
'),
    ('a3', 'eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q'),
    ('a3_jwk', '{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}'),
    ('a3_private', '{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}'),
    ('a3_pem', '-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7
6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==
-----END PUBLIC KEY-----
'),
    ('a4', 'eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA.AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn'),
    ('a4_jwk', '{"kty":"EC","crv":"P-521","x":"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk","y":"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2"}'),
    ('a5', 'eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.');

\ir include/rfc_vectors.sql
-- The signing input (first two segments) of a token, as bytes.
CREATE FUNCTION pg_temp.si(t text) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT pg_catalog.convert_to(pg_catalog.split_part(t, '.', 1) || '.' || pg_catalog.split_part(t, '.', 2), 'UTF8')
$$;
-- A leeway that reaches back to one day before A.1's exp.
CREATE FUNCTION pg_temp.back_to_2011() RETURNS interval
LANGUAGE sql STABLE AS $$
    SELECT pg_catalog.make_interval(secs => extract(epoch FROM pg_catalog.now()) - 1300819380 + 86400)
$$;

-- The JWS Payload of A.1 to A.3 and A.5.
CREATE TEMP TABLE a1_payload AS
SELECT pg_catalog.convert_to(E'{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}', 'UTF8') AS p;

-- A.1 HS256
SELECT is(crm_security.jws_verify(pg_temp.r('a1'), pg_temp.rj('a1_jwk')), p, 'A.1 jws_verify returns the payload') FROM a1_payload;
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)', pg_temp.r('a1'), pg_temp.r('a1_jwk')),
                 '28000', NULL, 'A.1 jwt_verify refuses it: exp 1300819380 is past');
SELECT is(crm_security.jwt_verify(pg_temp.r('a1'), pg_temp.rj('a1_jwk'), leeway => pg_temp.back_to_2011()),
          '{"iss":"joe","exp":1300819380,"http://example.com/is_root":true}'::jsonb,
          'A.1 jwt_verify with a leeway reaching back to 2011 accepts it and returns the claims');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb, leeway => %L::interval)',
                     pg_temp.r('a1'), pg_temp.r('a1_jwk'), pg_temp.back_to_2011() - '2 days'::interval),
                 '28000', NULL, 'A.1 jwt_verify with a leeway one day too short refuses it');
SELECT is(crm_security.jwt_verify(pg_temp.r('a1'), pg_temp.rj('a1_jwk'), algorithms => ARRAY['HS256'],
                                  issuer => 'joe', leeway => pg_temp.back_to_2011()) ->> 'iss',
          'joe', 'A.1 with algorithms {HS256} and issuer joe: accepted');
SELECT is(crm_security.sign_message('HS256', pg_temp.rj('a1_jwk'), pg_temp.si(pg_temp.r('a1'))),
          '\x7418dfb49799e0254ffa607dd8adbbba16d4254d69d6bff05b58055853848d79'::bytea,
          'A.1 sign_message reproduces the RFC MAC');
SELECT is(crm_security.hmac(pg_temp.si(pg_temp.r('a1')),
                            '\x0323354b2b0fa5bc837e0665777ba68f5ab328e6f054c928a90f84b2d2502ebfd3fb5a92d20647ef968ab4c377623d223d2e2172052e4f08c0cd9af567d080a3'::bytea,
                            'sha256'),
          pg_catalog.decode('7418dfb49799e0254ffa607dd8adbbba16d4254d69d6bff05b58055853848d79', 'hex'),
          'A.1 hmac() gives the RFC MAC');
SELECT is((SELECT header FROM crm_security.jwt_decode(pg_temp.r('a1'))), '{"typ":"JWT","alg":"HS256"}'::jsonb,
          'A.1 jwt_decode header');
SELECT is((SELECT payload ->> 'exp' FROM crm_security.jwt_decode(pg_temp.r('a1'))), '1300819380',
          'A.1 jwt_decode payload (expired, but decoding does not verify)');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jws_verify(%L, %L::jsonb)',
                     pg_catalog.replace(pg_temp.r('a1'), 'dBjft', 'dBjfu'), pg_temp.r('a1_jwk')),
                 '28000', NULL, 'A.1 with a changed MAC: refused');

-- A.2 RS256
SELECT is(crm_security.jws_verify(pg_temp.r('a2'), pg_temp.rj('a2_jwk')), p, 'A.2 jws_verify with the JWK') FROM a1_payload;
SELECT is(crm_security.jws_verify(pg_temp.r('a2'), pg_temp.r('a2_pem')), p, 'A.2 jws_verify with the PEM') FROM a1_payload;
SELECT is(crm_security.jws_verify(pg_temp.r('a2'), pg_temp.rj('a2_private')), p, 'A.2 jws_verify with the private JWK') FROM a1_payload;
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)', pg_temp.r('a2'), pg_temp.r('a2_pem')),
                 '28000', NULL, 'A.2 jwt_verify refuses it: expired');
SELECT is(crm_security.jwt_verify(pg_temp.r('a2'), pg_temp.r('a2_pem'), leeway => pg_temp.back_to_2011()) ->> 'iss', 'joe',
          'A.2 jwt_verify with a leeway accepts it');
SELECT is(pg_temp.b64u(crm_security.sign_message('RS256', pg_temp.rj('a2_private'), pg_temp.si(pg_temp.r('a2')))),
          pg_catalog.split_part(pg_temp.r('a2'), '.', 3), 'A.2 sign_message with the private JWK reproduces the RFC signature');
SELECT ok(crm_security.verify_signature('RS256', pg_temp.r('a2_pem'), pg_temp.si(pg_temp.r('a2')),
              crm_security.sign_message('RS256', pg_temp.rj('a2_private'), pg_temp.si(pg_temp.r('a2')))),
          'A.2 verify_signature accepts it');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jws_verify(%L, %L)',
                     pg_catalog.replace(pg_temp.r('a2'), 'eyJhbGciOiJSUzI1NiJ9', 'eyJhbGciOiJSUzM4NCJ9'), pg_temp.r('a2_pem')),
                 '28000', NULL, 'A.2 relabelled RS384: refused');

-- A.3 ES256
SELECT is(crm_security.jws_verify(pg_temp.r('a3'), pg_temp.rj('a3_jwk')), p, 'A.3 jws_verify with the JWK') FROM a1_payload;
SELECT is(crm_security.jws_verify(pg_temp.r('a3'), pg_temp.r('a3_pem')), p, 'A.3 jws_verify with the PEM') FROM a1_payload;
SELECT is(crm_security.jwt_verify(pg_temp.r('a3'), pg_temp.rj('a3_jwk'), leeway => pg_temp.back_to_2011()) ->> 'iss', 'joe',
          'A.3 jwt_verify with a leeway accepts it');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)', pg_temp.r('a3'), pg_temp.r('a3_jwk')),
                 '28000', NULL, 'A.3 jwt_verify refuses it: expired');
SELECT ok(crm_security.verify_signature('ES256', pg_temp.r('a3_pem'), pg_temp.si(pg_temp.r('a3')),
              crm_security.sign_message('ES256', pg_temp.rj('a3_private'), pg_temp.si(pg_temp.r('a3')))),
          'A.3 sign_message with the private JWK makes a signature the public key accepts');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jws_verify(%L, %L::jsonb)',
                     pg_catalog.replace(pg_temp.r('a3'), 'KICJleHAiOjEzMDA4MTkzODAs', 'KICJleHAiOjEzMDA4MTkzODEs'), pg_temp.r('a3_jwk')),
                 '28000', NULL, 'A.3 with exp changed by one second: refused');

-- A.4 ES512
SELECT is(crm_security.jws_verify(pg_temp.r('a4'), pg_temp.rj('a4_jwk')), '\x5061796c6f6164'::bytea,
          'A.4 jws_verify returns the payload "Payload"');
SELECT is(pg_catalog.length(pg_catalog.decode(pg_catalog.translate(pg_catalog.split_part(pg_temp.r('a4'), '.', 3), '-_', '+/'), 'base64')),
          132, 'A.4 signature is 132 bytes (r and s of 66 bytes)');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)', pg_temp.r('a4'), pg_temp.r('a4_jwk')),
                 '28000', NULL, 'A.4 jwt_verify refuses it: the payload is not a JSON object');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jws_verify(%L, %L::jsonb)', pg_temp.r('a4'), pg_temp.r('a3_jwk')),
                 '28000', NULL, 'A.4 verified with the P-256 key of A.3: refused');

-- A.5 unsecured JWS: refused whatever the key.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jws_verify(%L, %L::jsonb)', pg_temp.r('a5'), k),
                 '28000', NULL, 'A.5 (alg none) refused by jws_verify, key ' || n)
FROM (VALUES ('a1_jwk', pg_temp.r('a1_jwk')), ('a2_jwk', pg_temp.r('a2_jwk')), ('a3_jwk', pg_temp.r('a3_jwk'))) AS v(n, k);
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb, leeway => %L::interval)',
                     pg_temp.r('a5'), pg_temp.r('a1_jwk'), pg_temp.back_to_2011()),
                 '28000', NULL, 'A.5 (alg none) refused by jwt_verify, even with a leeway');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L, leeway => %L::interval)',
                     pg_temp.r('a5'), pg_temp.r('a2_pem'), pg_temp.back_to_2011()),
                 '28000', NULL, 'A.5 (alg none) refused by jwt_verify with a PEM');

SELECT * FROM finish();
ROLLBACK;
