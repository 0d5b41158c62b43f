-- No error message, detail or hint carries a secret, a key, a token or one of its
-- signature or payload segments: every failure is captured with GET STACKED DIAGNOSTICS and
-- searched for the strings it must not contain.

BEGIN;
SELECT plan(60);

-- Fixed test keys, made for these tests only (never used elsewhere).
CREATE TEMP TABLE k (name text PRIMARY KEY, val text NOT NULL);
INSERT INTO k VALUES
    ('secret', '0123456789abcdef0123456789abcdef'),
    ('secret31', '0123456789abcdef0123456789abcde'),
    ('rsa_priv', $k$-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCpmvXADFzgC7sf
ROJgrqr/IJfHAKCIAEzg2fX0EqTTl/QMvIHP89NO3uJBp8aDk3zeZhXhdBkNPkcy
t6ZqQWXespXKpMlzZV6ufW+kriugnusHQi7eQ530x94XkPX+cP0OYIaFl+cUNbhy
5yGc0GCPk2vZ+jyvM+wzuAUY+mjqBt3X3hjOTT7DlKeJkFWnUB56YtrsDwUfTR1F
lbgpTph35e42E9950rEpVWaz27fDSgof3XFjjkC6Q62JIu7vkbke18wV9ks/QRMN
9gVXsyItP35mVsd/dq0iEOW5KGaZpz3Z8wNuCf1KYc/4oFjPTKb41JB2AclFFOFV
IJ9iLe+lAgMBAAECggEAANp7NaX2uMnki5n1Ioy+dN3ArOCRQ4+1tuFFc5CEc8+t
RHwHPPkW5jpBx2127AmvSdZQx6YXr4Mm760QdN3BKCPxd68h7UOdUejKV+qvj0ro
F2lCSjpAbo9WdsKPiIyuVb+9tKkOIYIgI3r9X2u+yYhjfFKlJGrGeCpgcYX0m9xp
HAOOCDmWnMp317fAf3EdRbeDp1w6tJTypn18Lsk5Ioroh3N+iQF2EO0EkXfCjrLu
33WK8GaAlWYlyLw2mpY1oVzGfqlcnjSYfzbU11CU+G0RPJwfrCo8yK4d5/yJyuv+
ZEzb08bujqjvcSnx6T5VYSO1adxbGGkrL+Cm4rkdIQKBgQDThp8DLAHn8o+MnUjC
3u9Yw09eWz3x1AKaypY8pQ08M481PTTxam3TkgqllnugtaPJkxmzHzw9gdpQQ/kL
3Egr0QDV5CUkp/wSchoyETezhraKHX/Jzzym2LrQ32U9RHcitJ/j/gTUWSaLX1bM
LesgJWVdps/R4Iy8Nz6jhrAfEwKBgQDNQ/cdDNpjHXbQFU5OZ+ceQYGEVvH5Iiia
uP7Jn8zOpfGqB7Aw8xsQLhV/W5FoSvCXBClitb72iA9CiU5ID40Bj5hHtbk2zCZE
uVx48NlmRxwE7FrpdBd6BCbggDs5n1vwIs0omrrlHnonXj+Sb4JWPjvhM/IWMZwf
eW+1nWO1ZwKBgBlSAxTZHr1KLt7RMRWKpDIG5yhPWcHp9AndeFB4HXZ4YYso8X54
k/8Ae1/I/LGHLL0Da88iTQ67zYtQJ67Axq7gDO6NqdiSdz0qBXK61uUZmh48W8Cn
mwYJ6Yr5QuArous3nfAnxyI4LcH/Pp+gW4X0lAa64iOocpBROKFQjSKbAoGBAMeX
5Pv8eYaTKergLMqUwelrrPLwUE3+Zxk79ZQ8rLvsJHc/DpYqbhBnn0O92EBfTl6q
D0wKievTFXOPa+0qIeR4qoxgKf8ct8FvtHltSRfo4VfwM955ojJlQyBd0DkRuiZg
0LlA66bK4eDSBmLvxv7xeOxcxHPMPZFlVbh1mHTVAoGAUfxUCuD+lKKP8aVeLJkb
ZcWgbPmR+/6gmjgXPtf3yiZsBhwbcQe8texIVcM7ywqjQxS2YrQjL/0Odd3S3T+l
D31Uoi/R7cQy4CojRJfGoRLD+19TbwXjZsEeoyDLUZsFsmAlmOiVIZ+wgDTZmxTt
6MtNZOwMdWz4ebWx6CaW2DA=
-----END PRIVATE KEY-----$k$),
    ('rsa_pub', $k$-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqZr1wAxc4Au7H0TiYK6q
/yCXxwCgiABM4Nn19BKk05f0DLyBz/PTTt7iQafGg5N83mYV4XQZDT5HMremakFl
3rKVyqTJc2Vern1vpK4roJ7rB0Iu3kOd9MfeF5D1/nD9DmCGhZfnFDW4cuchnNBg
j5Nr2fo8rzPsM7gFGPpo6gbd194Yzk0+w5SniZBVp1AeemLa7A8FH00dRZW4KU6Y
d+XuNhPfedKxKVVms9u3w0oKH91xY45AukOtiSLu75G5HtfMFfZLP0ETDfYFV7Mi
LT9+ZlbHf3atIhDluShmmac92fMDbgn9SmHP+KBYz0ym+NSQdgHJRRThVSCfYi3v
pQIDAQAB
-----END PUBLIC KEY-----$k$),
    ('ec_priv', $k$-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiK+qTOTrtMv7ZWUb
KKRPbsBAky5yvrCKb83PU6y5ESuhRANCAATnM7ZbpkMwVCVA1/SNxLrKSrWfgybF
5UlTHcYaWUZ0oj4UfkI/q8im6h3nuC0bC0ZXc6BkIzAzcyw2mOyVWwOP
-----END PRIVATE KEY-----$k$);

CREATE FUNCTION pg_temp.k(n text) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT val FROM k WHERE name = n $$;
CREATE FUNCTION pg_temp.kj(n text) RETURNS jsonb
LANGUAGE sql STABLE AS $$ SELECT val::jsonb FROM k WHERE name = n $$;

CREATE FUNCTION pg_temp.b64u(b bytea) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.translate(pg_catalog.encode(b, 'base64'), E'+/=\n', '-_')
$$;
CREATE FUNCTION pg_temp.b64u(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT pg_temp.b64u(pg_catalog.convert_to(t, 'UTF8')) $$;

-- A token over the exact segments given, signed by crm_security.sign_message.
CREATE FUNCTION pg_temp.signed(hseg text, pseg text, alg text, key text) RETURNS text
LANGUAGE sql AS $$
    SELECT hseg || '.' || pseg || '.' || pg_temp.b64u(crm_security.sign_message(alg, key,
               pg_catalog.convert_to(hseg || '.' || pseg, 'UTF8')))
$$;
-- A token from header and payload JSON texts.
CREATE FUNCTION pg_temp.tok(header text, payload text, alg text DEFAULT 'HS256',
                            key text DEFAULT '0123456789abcdef0123456789abcdef') RETURNS text
LANGUAGE sql AS $$ SELECT pg_temp.signed(pg_temp.b64u(header), pg_temp.b64u(payload), alg, key) $$;
-- An HS256 token whose MAC is made by hmac() with any secret, whatever its length or form.
CREATE FUNCTION pg_temp.hs_tok(header text, payload text, secret text) RETURNS text
LANGUAGE sql AS $$
    SELECT pg_temp.b64u(header) || '.' || pg_temp.b64u(payload) || '.'
           || pg_temp.b64u(crm_security.hmac(pg_catalog.convert_to(pg_temp.b64u(header) || '.'
                                                                   || pg_temp.b64u(payload), 'UTF8'),
                                             pg_catalog.convert_to(secret, 'UTF8'), 'sha256'))
$$;
-- Seconds since the epoch, `d` seconds from now.
CREATE FUNCTION pg_temp.t(d numeric) RETURNS numeric
LANGUAGE sql STABLE AS $$ SELECT pg_catalog.floor(extract(epoch FROM pg_catalog.now())) + d $$;
-- Claims that pass: a subject and an expiry an hour away.
CREATE FUNCTION pg_temp.claims() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT pg_catalog.format('{"sub":"alice","exp":%s}', pg_temp.t(3600)) $$;


-- Run q; return its SQLSTATE and what the error tells the client (message, detail, hint),
-- or 'no error'.  The context is left out: PL/pgSQL puts the text of the EXECUTEd statement
-- there, with the arguments this test itself passed.
CREATE FUNCTION pg_temp.err(q text, OUT state text, OUT said text)
LANGUAGE plpgsql AS $$
DECLARE
    m text; d text; h text;
BEGIN
    EXECUTE q;
    state := 'none';
    said := 'no error';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
                            h = PG_EXCEPTION_HINT;
    said := coalesce(m, '') || ' | ' || coalesce(d, '') || ' | ' || coalesce(h, '');
END
$$;

-- The cases: a failing call and the strings that must not appear in what the error says.
CREATE TEMP TABLE leak (n int, what text, q text, forbidden text[]);
CREATE TEMP TABLE tokens AS
SELECT pg_temp.tok('{"alg":"HS256"}', pg_temp.claims()) AS good,
       pg_temp.tok('{"alg":"HS256"}', pg_catalog.format('{"sub":"alice","exp":%s}', pg_temp.t(-3600))) AS expired,
       pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), 'a different secret of 32 bytes!!') AS forged,
       pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), pg_temp.k('rsa_pub')) AS confused;
-- Lines of the private key PEM body (any of them in a message would be a leak).
CREATE TEMP TABLE pem_lines AS
SELECT pg_catalog.array_agg(l) AS lines
FROM pg_catalog.regexp_split_to_table(pg_temp.k('rsa_priv'), E'\n') AS l
WHERE l <> '' AND l NOT LIKE '-----%';

INSERT INTO leak
SELECT 1, 'wrong MAC', pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)', forged, pg_temp.k('secret')),
       ARRAY[pg_temp.k('secret'), pg_catalog.left(pg_temp.k('secret'), 12), forged,
             pg_catalog.split_part(forged, '.', 3), pg_catalog.split_part(forged, '.', 2)] FROM tokens
UNION ALL
SELECT 2, 'expired token', pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)', expired, pg_temp.k('secret')),
       ARRAY[pg_temp.k('secret'), expired, pg_catalog.split_part(expired, '.', 3), pg_catalog.split_part(expired, '.', 2)] FROM tokens
UNION ALL
SELECT 3, 'audience mismatch', pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L, audience => %L)', good, pg_temp.k('secret'), 'api'),
       ARRAY[pg_temp.k('secret'), good, pg_catalog.split_part(good, '.', 3)] FROM tokens
UNION ALL
SELECT 4, 'HMAC secret too short (jwt_sign)', $$SELECT crm_security.jwt_sign('{"sub":"a"}', '0123456789abcdef0123456789abcde')$$,
       ARRAY[pg_temp.k('secret31'), pg_catalog.left(pg_temp.k('secret31'), 12)]
UNION ALL
SELECT 5, 'HMAC secret too short (verify_signature)',
       $$SELECT crm_security.verify_signature('HS256', 'S3cr3t-S3cr3t-S3cr3t!', '\x61', '\x00')$$,
       ARRAY['S3cr3t-S3cr3t-S3cr3t!', 'S3cr3t-S3cr3t']
UNION ALL
SELECT 6, 'oct JWK too short', $$SELECT crm_security.verify_signature('HS256', '{"kty":"oct","k":"c2hvcnQtc2VjcmV0LXZhbHVl"}'::jsonb, '\x61', '\x00')$$,
       ARRAY['c2hvcnQtc2VjcmV0LXZhbHVl', 'short-secret-value']
UNION ALL
SELECT 7, 'private PEM where an HMAC secret is needed', pg_catalog.format('SELECT crm_security.jwt_sign(%L, %L, %L)', '{"sub":"a"}', pg_temp.k('rsa_priv'), 'HS256'),
       (SELECT lines FROM pem_lines)
UNION ALL
SELECT 8, 'private PEM with the wrong algorithm', pg_catalog.format('SELECT crm_security.sign_message(%L, %L, %L::bytea)', 'ES256', pg_temp.k('rsa_priv'), '\x00'),
       (SELECT lines FROM pem_lines)
UNION ALL
SELECT 9, 'damaged private PEM', pg_catalog.format('SELECT crm_security.sign_message(%L, %L, %L::bytea)', 'RS256',
                                                    pg_catalog.replace(pg_temp.k('rsa_priv'), E'\nMIIEv', E'\nMIIFv'), '\x00'),
       (SELECT pg_catalog.array_agg(pg_catalog.replace(l, 'MIIEv', 'MIIFv')) FROM pem_lines, pg_catalog.unnest(lines) AS l)
UNION ALL
SELECT 10, 'algorithm confusion', pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)', confused, pg_temp.k('rsa_pub')),
       ARRAY[confused, pg_catalog.split_part(confused, '.', 3)] FROM tokens
UNION ALL
SELECT 11, 'strict base64url', pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)', good || '=', pg_temp.k('secret')),
       ARRAY[pg_temp.k('secret'), good, pg_catalog.split_part(good, '.', 3)] FROM tokens
UNION ALL
SELECT 12, 'jws_verify with the wrong MAC', pg_catalog.format('SELECT crm_security.jws_verify(%L, %L)', forged, pg_temp.k('secret')),
       ARRAY[pg_temp.k('secret'), forged, pg_catalog.split_part(forged, '.', 3)] FROM tokens
UNION ALL
SELECT 13, 'JWKS without the kid', pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                                                     pg_temp.tok('{"alg":"HS256","kid":"nope"}', pg_temp.claims()),
                                                     '{"keys":[{"kty":"oct","kid":"k1","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}'),
       ARRAY['c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA', 'secret-secret-secret']
UNION ALL
SELECT 14, 'a 1 MB token', pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                                             'eyJhbGciOiJIUzI1NiJ9.' || pg_catalog.repeat('QUJD', 300000) || '.c2ln', pg_temp.k('secret')),
       ARRAY[pg_temp.k('secret'), 'QUJDQUJDQUJD', 'c2ln']
UNION ALL
SELECT 15, 'jwt_decode on garbage', $$SELECT header FROM crm_security.jwt_decode('eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQtdmFsdWU.bm90LWEtc2ln!')$$,
       ARRAY['c2VjcmV0LXBheWxvYWQtdmFsdWU', 'bm90LWEtc2ln', 'secret-payload-value'];

CREATE TEMP TABLE leak_result AS
SELECT n, what, (pg_temp.err(q)).*, forbidden FROM leak;

SELECT ok(state LIKE '28%' OR state = '22023', pg_catalog.format('case %s (%s) fails with a clean SQLSTATE (got %s)', n, what, state))
FROM leak_result ORDER BY n;
SELECT is((SELECT pg_catalog.string_agg(pg_catalog.left(f, 12) || '...', ', ') FROM pg_catalog.unnest(forbidden) AS f
           WHERE pg_catalog.strpos(said, f) > 0), NULL,
          pg_catalog.format('case %s (%s): no secret, key or token text in the error', n, what))
FROM leak_result ORDER BY n;
SELECT ok(pg_catalog.cardinality(forbidden) > 0, pg_catalog.format('case %s (%s) has strings to look for', n, what))
FROM leak_result ORDER BY n;
-- Errors carry a detail that says why (so the absence of secrets is not the absence of text).
SELECT ok(pg_catalog.length(said) > 20, pg_catalog.format('case %s (%s) explains itself: %s', n, what, pg_catalog.left(said, 120)))
FROM leak_result ORDER BY n;

SELECT * FROM finish();
ROLLBACK;
