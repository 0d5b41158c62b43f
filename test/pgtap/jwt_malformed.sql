-- Malformed input: segments, strict base64url (padding, alphabet, whitespace, unused bits),
-- JSON that is not an object, invalid UTF-8, NUL, duplicate members, deep nesting, oversized
-- tokens, jwt_decode on garbage, NULL arguments and malformed arguments.

BEGIN;
SELECT plan(136);

\ir include/jwt_fixtures.sql


-- The outcome of a statement as text: 'ok', 'null' or the SQLSTATE of its error.
CREATE FUNCTION pg_temp.outcome(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r text;
    st text;
BEGIN
    EXECUTE q INTO r;
    RETURN CASE WHEN r IS NULL THEN 'null' ELSE 'ok' END;
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
    RETURN st;
END
$$;
-- jwt_verify of a token with the test secret.
CREATE FUNCTION pg_temp.jv(token text) RETURNS text
LANGUAGE sql AS $$
    SELECT pg_temp.outcome(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)', token, pg_temp.k('secret')))
$$;
-- A token over raw bytes for header and payload (for invalid UTF-8 and NUL bytes).
CREATE FUNCTION pg_temp.raw_tok(h bytea, p bytea) RETURNS text
LANGUAGE sql AS $$ SELECT pg_temp.signed(pg_temp.b64u(h), pg_temp.b64u(p), 'HS256', pg_temp.k('secret')) $$;
-- Replace the last character of a base64url segment by the next one of the alphabet: the
-- decoded bytes stay the same for a lenient decoder, but an unused bit becomes 1.
CREATE FUNCTION pg_temp.bump_last(s text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT pg_catalog.left(s, -1) || pg_catalog.substr(a, pg_catalog.strpos(a, pg_catalog.right(s, 1)) + 1, 1)
    FROM (SELECT 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'::text AS a) x
$$;

CREATE TEMP TABLE good AS
SELECT pg_temp.tok('{"alg":"HS256"}', pg_temp.claims()) AS t;

SELECT is(pg_temp.jv(t), 'ok', 'the unmodified token passes') FROM good;

-- Segments.
SELECT is(pg_temp.jv(tok), '28000', 'refused: ' || d)
FROM good, LATERAL (VALUES
    ('empty string', ''),
    ('one segment', pg_catalog.split_part(t, '.', 1)),
    ('two segments', pg_catalog.split_part(t, '.', 1) || '.' || pg_catalog.split_part(t, '.', 2)),
    ('four segments', t || '.' || pg_catalog.split_part(t, '.', 3)),
    ('four segments, last empty', t || '.'),
    ('five segments (JWE shape)', t || '.x.y'),
    ('only dots', '..'),
    ('empty header', '.' || pg_catalog.split_part(t, '.', 2) || '.' || pg_catalog.split_part(t, '.', 3)),
    ('empty payload', pg_catalog.split_part(t, '.', 1) || '..' || pg_catalog.split_part(t, '.', 3)),
    ('empty signature', pg_catalog.split_part(t, '.', 1) || '.' || pg_catalog.split_part(t, '.', 2) || '.'),
    ('header and payload swapped', pg_catalog.split_part(t, '.', 2) || '.' || pg_catalog.split_part(t, '.', 1) || '.' || pg_catalog.split_part(t, '.', 3)),
    ('a leading space', ' ' || t),
    ('a trailing newline', t || E'\n'),
    ('a space inside the payload', overlay(t placing ' ' from 30 for 0)),
    ('a tab before the signature', pg_catalog.replace(t, '.' || pg_catalog.split_part(t, '.', 3), E'.\t' || pg_catalog.split_part(t, '.', 3))),
    ('the signature padded with =', t || '='),
    ('a non-zero unused bit in the signature', pg_catalog.split_part(t, '.', 1) || '.' || pg_catalog.split_part(t, '.', 2) || '.'
         || pg_temp.bump_last(pg_catalog.split_part(t, '.', 3))),
    ('a character outside the alphabet', pg_catalog.replace(t, '.', '.!')),
    ('percent-encoding', pg_catalog.replace(t, 'e', '%65'))
) AS v(d, tok);

-- Padding, '+', '/' and unused bits in signed segments (the signature covers the exact text,
-- so only the strict base64url rule can refuse them).
SELECT is(pg_temp.jv(pg_temp.signed(pg_temp.b64u('{"alg":"HS256","xy":1}') || '==', pg_temp.b64u(pg_temp.claims()),
                                    'HS256', pg_temp.k('secret'))), '28000', 'header padded with ==: refused');
SELECT is(pg_temp.jv(pg_temp.signed(pg_temp.b64u('{"alg":"HS256","xy":1}'), pg_temp.b64u('{"sub":">>>???"}') || '==',
                                    'HS256', pg_temp.k('secret'))), '28000', 'payload padded with ==: refused');
SELECT is(pg_temp.b64u('{"sub":">>>???"}'), 'eyJzdWIiOiI-Pj4_Pz8ifQ', 'this payload encodes with - and _');
SELECT is(pg_temp.jv(pg_temp.signed(pg_temp.b64u('{"alg":"HS256"}'), 'eyJzdWIiOiI-Pj4_Pz8ifQ', 'HS256', pg_temp.k('secret'))),
          'ok', 'payload with - and _: accepted');
SELECT is(pg_temp.jv(pg_temp.signed(pg_temp.b64u('{"alg":"HS256"}'), 'eyJzdWIiOiI+Pj4/Pz8ifQ', 'HS256', pg_temp.k('secret'))),
          '28000', 'the same payload with + and /: refused');
SELECT is(pg_temp.jv(pg_temp.signed(pg_temp.b64u('{"alg":"HS256"}'), 'eyJzdWIiOiI-Pj4_Pz8ifR', 'HS256', pg_temp.k('secret'))),
          '28000', 'the same payload with a non-zero unused bit (ifQ -> ifR): refused');
SELECT is(pg_temp.jv(pg_temp.signed(pg_temp.b64u('{"alg":"HS256"}'), 'eyJzdWIiOiI-Pj4_Pz8if', 'HS256', pg_temp.k('secret'))),
          '28000', 'a payload of impossible length (4n+1 characters): refused');
SELECT is(pg_temp.jv(pg_temp.signed(pg_temp.b64u('{"alg":"HS256"}'), 'eyJzdWIi' || E'\n' || 'OiI-Pj4_Pz8ifQ', 'HS256', pg_temp.k('secret'))),
          '28000', 'a line break inside the payload: refused');

-- Header and payload that are not JSON objects.
SELECT is(pg_temp.jv(pg_temp.tok(h, p)), '28000', 'refused: ' || d)
FROM (VALUES
    ('header not JSON', 'alg=HS256', pg_temp.claims()),
    ('payload not JSON', '{"alg":"HS256"}', 'sub=alice'),
    ('header a JSON array', '["alg","HS256"]', pg_temp.claims()),
    ('header a JSON string', '"HS256"', pg_temp.claims()),
    ('header null', 'null', pg_temp.claims()),
    ('payload a JSON array', '{"alg":"HS256"}', '[{"sub":"alice"}]'),
    ('payload a JSON string', '{"alg":"HS256"}', '"alice"'),
    ('payload a number', '{"alg":"HS256"}', '42'),
    ('payload null', '{"alg":"HS256"}', 'null'),
    ('payload empty', '{"alg":"HS256"}', ''),
    ('header without alg', '{"typ":"JWT"}', pg_temp.claims()),
    ('alg not a string', '{"alg":["HS256"]}', pg_temp.claims()),
    ('alg null', '{"alg":null}', pg_temp.claims()),
    ('unknown alg', '{"alg":"HS257"}', pg_temp.claims()),
    ('trailing garbage after the header', '{"alg":"HS256"}x', pg_temp.claims()),
    ('two JSON values as payload', '{"alg":"HS256"}', '{"sub":"a"}{"sub":"b"}'),
    ('JSON with a trailing comma', '{"alg":"HS256",}', pg_temp.claims()),
    ('single-quoted JSON', '{''alg'':''HS256''}', pg_temp.claims()),
    ('duplicate alg (HS256 then none)', '{"alg":"HS256","alg":"none"}', pg_temp.claims()),
    ('duplicate alg (none then HS256)', '{"alg":"none","alg":"HS256"}', pg_temp.claims()),
    ('duplicate alg (same value)', '{"alg":"HS256","alg":"HS256"}', pg_temp.claims()),
    ('duplicate sub in the payload', '{"alg":"HS256"}', pg_catalog.format('{"sub":"alice","sub":"admin","exp":%s}', pg_temp.t(3600))),
    ('duplicate exp in the payload', '{"alg":"HS256"}', pg_catalog.format('{"exp":%s,"exp":%s}', pg_temp.t(-3600), pg_temp.t(3600))),
    ('\u0000 in the payload', '{"alg":"HS256"}', '{"sub":"ali\u0000ce"}'),
    ('\u0000 in the header', '{"alg":"HS256","kid":"a\u0000"}', pg_temp.claims()),
    ('a lone surrogate escape', '{"alg":"HS256"}', '{"sub":"\ud800"}'),
    ('10,000 [ in the payload', '{"alg":"HS256"}', pg_catalog.repeat('[', 10000)),
    ('10,000 { in the header', pg_catalog.repeat('{"a":', 10000), pg_temp.claims()),
    ('nesting 100 deep', '{"alg":"HS256"}', '{"a":' || pg_catalog.repeat('[', 100) || pg_catalog.repeat(']', 100) || '}'),
    ('nesting 100,000 deep, balanced', '{"alg":"HS256"}', '{"a":' || pg_catalog.repeat('[', 100000) || pg_catalog.repeat(']', 100000) || '}')
) AS v(d, h, p);
SELECT is(pg_temp.jv(pg_temp.tok('{"alg":"HS256"}', '{"a":' || pg_catalog.repeat('[', 10) || pg_catalog.repeat(']', 10) || '}')),
          'ok', 'nesting 10 deep: accepted');
SELECT is(pg_temp.jv(pg_temp.raw_tok(h, p)), '28000', 'refused: ' || d)
FROM (VALUES
    ('invalid UTF-8 in the header', '\x7b22616c67223a224853323536222c2278223a22ff227d'::bytea, pg_catalog.convert_to(pg_temp.claims(), 'UTF8')),
    ('invalid UTF-8 in the payload', pg_catalog.convert_to('{"alg":"HS256"}', 'UTF8'), '\x7b22737562223a22c328227d'::bytea),
    ('overlong UTF-8 in the payload', pg_catalog.convert_to('{"alg":"HS256"}', 'UTF8'), '\x7b22737562223a22c0af227d'::bytea),
    ('NUL byte in the payload', pg_catalog.convert_to('{"alg":"HS256"}', 'UTF8'), '\x7b22737562223a22610062227d'::bytea),
    ('NUL byte after the payload', pg_catalog.convert_to('{"alg":"HS256"}', 'UTF8'), '\x7b22737562223a2261227d00'::bytea),
    ('NUL byte in the header', '\x7b22616c67223a2248533235360022207d'::bytea, pg_catalog.convert_to(pg_temp.claims(), 'UTF8')),
    ('UTF-16 payload', pg_catalog.convert_to('{"alg":"HS256"}', 'UTF8'), '\xfffe7b002200610022003a002200620022007d00'::bytea)
) AS v(d, h, p);

-- Oversized tokens: refused by crm_security.max_token_length before parsing.
SELECT is((SELECT setting FROM pg_catalog.pg_settings WHERE name = 'crm_security.max_token_length'), '65536',
          'max_token_length defaults to 65536');
SELECT is(pg_temp.jv(pg_temp.tok('{"alg":"HS256"}', pg_catalog.format('{"pad":"%s","exp":%s}', pg_catalog.repeat('x', 1048576), pg_temp.t(3600)))),
          '28000', 'a correctly signed 1 MB token: refused');
SELECT is(pg_temp.jv(pg_catalog.repeat('A', 1048576) || '.' || pg_catalog.repeat('A', 1048576) || '.AAAA'),
          '28000', 'a 2 MB garbage token: refused');
SELECT is(pg_temp.jv(pg_temp.tok('{"alg":"HS256"}', pg_catalog.format('{"pad":"%s","exp":%s}', pg_catalog.repeat('x', 40000), pg_temp.t(3600)))),
          'ok', 'a 53 kB token (under the limit): accepted');
SELECT is(pg_temp.outcome(pg_catalog.format('SELECT crm_security.jws_verify(%L, %L)',
              pg_temp.tok('{"alg":"HS256"}', pg_catalog.repeat('y', 1048576)), pg_temp.k('secret'))),
          '28000', 'jws_verify: a 1.4 MB JWS refused');
SELECT is(pg_temp.outcome(pg_catalog.format('SELECT header FROM crm_security.jwt_decode(%L)',
              pg_temp.tok('{"alg":"HS256"}', pg_catalog.repeat('y', 1048576)))),
          '28000', 'jwt_decode: a 1.4 MB token refused');
CREATE TEMP TABLE big AS
SELECT pg_temp.tok('{"alg":"HS256"}', pg_catalog.format('{"pad":"%s","exp":%s}', pg_catalog.repeat('x', 4500), pg_temp.t(3600))) AS t;
SET crm_security.max_token_length = 4096;
SELECT is(pg_temp.jv(t), '28000', 'max_token_length = 4096 refuses a 6 kB token') FROM big;
RESET crm_security.max_token_length;
SELECT is(pg_temp.jv(t), 'ok', 'and RESET brings it back') FROM big;

-- jwt_decode parses without verifying; garbage is refused.
SELECT is((SELECT header ->> 'alg' FROM crm_security.jwt_decode(t)), 'HS256', 'jwt_decode returns the header') FROM good;
SELECT is((SELECT payload ->> 'sub' FROM crm_security.jwt_decode(t)), 'alice', 'jwt_decode returns the payload') FROM good;
SELECT is((SELECT pg_catalog.length(signature) FROM crm_security.jwt_decode(t)), 32, 'jwt_decode returns the signature bytes') FROM good;
SELECT is(pg_temp.outcome(pg_catalog.format('SELECT header FROM crm_security.jwt_decode(%L)', tok)), '28000', 'jwt_decode refuses: ' || d)
FROM good, LATERAL (VALUES ('empty string', ''), ('garbage', 'garbage'), ('dots', '...'),
                           ('binary', pg_catalog.chr(1) || pg_catalog.chr(127) || '.a.b'),
                           ('non-JSON header', 'YWJj.YWJj.YWJj'),
                           ('padded', t || '=='),
                           ('10,000 [', pg_temp.b64u('{"alg":"HS256"}') || '.' || pg_temp.b64u(pg_catalog.repeat('[', 10000)) || '.AA')
) AS v(d, tok);

-- NULL arguments: strict functions answer NULL, jwt_verify refuses a NULL token (28000) and
-- a NULL key (22023).
SELECT throws_ok('SELECT crm_security.jwt_verify(NULL::text, ''0123456789abcdef0123456789abcdef''::text)', '28000', NULL,
                 'jwt_verify(NULL token, text key): 28000');
SELECT throws_ok('SELECT crm_security.jwt_verify(NULL::text, ''{"kty":"oct","k":"AAAA"}''::jsonb)', '28000', NULL,
                 'jwt_verify(NULL token, jsonb key): 28000');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, NULL::text)', t), '22023', NULL,
                 'jwt_verify(token, NULL text key): 22023') FROM good;
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, NULL::jsonb)', t), '22023', NULL,
                 'jwt_verify(token, NULL jsonb key): 22023') FROM good;
SELECT is(crm_security.jwt_verify(t, pg_temp.k('secret'), algorithms => NULL, audience => NULL, issuer => NULL) ->> 'sub',
          'alice', 'jwt_verify with NULL algorithms, audience and issuer: the defaults') FROM good;
SELECT ok(pg_temp.outcome(q) IN ('null', '22023', '28000'),
          'NULL argument answered by NULL or a clean error: ' || q || ' -> ' || pg_temp.outcome(q))
FROM pg_catalog.unnest(ARRAY[
    $$SELECT crm_security.hmac(NULL::bytea, '\x00'::bytea, 'sha256')$$,
    $$SELECT crm_security.hmac('\x00'::bytea, NULL::bytea, 'sha256')$$,
    $$SELECT crm_security.hmac('\x00'::bytea, '\x00'::bytea, NULL)$$,
    $$SELECT crm_security.hmac(NULL::text, 'k'::text, 'sha256')$$,
    $$SELECT crm_security.secure_compare(NULL::bytea, '\x00'::bytea)$$,
    $$SELECT crm_security.secure_compare('\x00'::bytea, NULL::bytea)$$,
    $$SELECT crm_security.secure_compare(NULL::text, 'a'::text)$$,
    $$SELECT crm_security.verify_signature(NULL, '0123456789abcdef0123456789abcdef'::text, '\x00', '\x00')$$,
    $$SELECT crm_security.verify_signature('HS256', NULL::text, '\x00', '\x00')$$,
    $$SELECT crm_security.verify_signature('HS256', NULL::jsonb, '\x00', '\x00')$$,
    $$SELECT crm_security.verify_signature('HS256', '0123456789abcdef0123456789abcdef'::text, NULL, '\x00')$$,
    $$SELECT crm_security.verify_signature('HS256', '0123456789abcdef0123456789abcdef'::text, '\x00', NULL)$$,
    $$SELECT crm_security.sign_message(NULL, '0123456789abcdef0123456789abcdef'::text, '\x00')$$,
    $$SELECT crm_security.sign_message('HS256', NULL::text, '\x00')$$,
    $$SELECT crm_security.sign_message('HS256', NULL::jsonb, '\x00')$$,
    $$SELECT crm_security.sign_message('HS256', '0123456789abcdef0123456789abcdef'::text, NULL)$$,
    $$SELECT crm_security.random_bytes(NULL)$$,
    $$SELECT crm_security.jwt_sign(NULL, '0123456789abcdef0123456789abcdef'::text)$$,
    $$SELECT crm_security.jwt_sign('{}', NULL::text)$$,
    $$SELECT crm_security.jwt_sign('{}', NULL::jsonb)$$,
    $$SELECT crm_security.jwt_sign('{}', '0123456789abcdef0123456789abcdef'::text, NULL)$$,
    $$SELECT header FROM crm_security.jwt_decode(NULL)$$,
    $$SELECT crm_security.jws_verify(NULL, '{"kty":"oct","k":"AAAA"}'::jsonb)$$,
    $$SELECT crm_security.jws_verify(NULL, 'secret'::text)$$,
    $$SELECT crm_security.jws_verify('a.b.c', NULL::jsonb)$$,
    $$SELECT crm_security.jws_verify('a.b.c', NULL::text)$$]) AS q;
SELECT is(pg_temp.outcome(q), 'null', 'strict function answers NULL: ' || q)
FROM pg_catalog.unnest(ARRAY[
    $$SELECT crm_security.hmac(NULL::bytea, '\x00'::bytea, 'sha256')$$,
    $$SELECT crm_security.secure_compare(NULL::bytea, '\x00'::bytea)$$,
    $$SELECT crm_security.random_bytes(NULL)$$]) AS q;

-- Malformed arguments.
SELECT is(pg_temp.outcome(q), '22023', 'malformed argument, 22023: ' || q)
FROM pg_catalog.unnest(ARRAY[
    'SELECT crm_security.random_bytes(0)',
    'SELECT crm_security.random_bytes(-1)',
    'SELECT crm_security.random_bytes(2147483647)',
    'SELECT crm_security.random_bytes(1073741824)',
    $$SELECT crm_security.hmac('\x00'::bytea, '\x00'::bytea, 'md5')$$,
    $$SELECT crm_security.hmac('\x00'::bytea, '\x00'::bytea, 'sha1')$$,
    $$SELECT crm_security.hmac('\x00'::bytea, '\x00'::bytea, '')$$,
    $$SELECT crm_security.hmac('a'::text, 'b'::text, 'whirlpool')$$,
    $$SELECT crm_security.verify_signature('XS256', '0123456789abcdef0123456789abcdef'::text, '\x00', '\x00')$$,
    $$SELECT crm_security.verify_signature('', '0123456789abcdef0123456789abcdef'::text, '\x00', '\x00')$$,
    $$SELECT crm_security.sign_message('HS1', '0123456789abcdef0123456789abcdef'::text, '\x00')$$,
    $$SELECT crm_security.sign_message('RSA-OAEP', '0123456789abcdef0123456789abcdef'::text, '\x00')$$,
    $$SELECT crm_security.jwt_sign('{}', '0123456789abcdef0123456789abcdef'::text, 'RS1')$$]) AS q;
SELECT is(pg_catalog.length(crm_security.random_bytes(1)), 1, 'random_bytes(1) gives 1 byte');
SELECT is(pg_catalog.length(crm_security.random_bytes(4096)), 4096, 'random_bytes(4096) gives 4096 bytes');
SELECT isnt(crm_security.random_bytes(32), crm_security.random_bytes(32), 'two random_bytes(32) differ');
SELECT is(pg_temp.outcome($$SELECT crm_security.jwt_sign('[1,2]', '0123456789abcdef0123456789abcdef'::text)$$), '22023',
          'jwt_sign of a JSON array: 22023');
SELECT is(pg_temp.outcome($$SELECT crm_security.jwt_sign('"x"', '0123456789abcdef0123456789abcdef'::text)$$), '22023',
          'jwt_sign of a JSON string: 22023');

SELECT * FROM finish();
ROLLBACK;
