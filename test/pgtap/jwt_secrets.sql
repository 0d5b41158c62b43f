-- No error message, detail or hint carries a secret, a key, a token or one of its
-- signature or payload segments: every failure is captured with GET STACKED DIAGNOSTICS and
-- searched for the strings it must not contain.

BEGIN;
SELECT plan(60);

\ir include/jwt_fixtures.sql


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
