-- API key format (docs/api-keys.md): generate_api_key(), api_key_format_valid(),
-- hash_api_key() and the pepper settings.  The checksum is checked against a CRC32 written
-- here from its definition (IEEE 802.3, reflected, as zlib), not against the C code.
SET client_min_messages = warning;
BEGIN;
SELECT plan(46);

CREATE FUNCTION pg_temp.crc32(data bytea) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    crc bigint := 4294967295;
    i int;
    j int;
BEGIN
    FOR i IN 0 .. length(data) - 1 LOOP
        crc := crc # get_byte(data, i);
        FOR j IN 1 .. 8 LOOP
            IF crc & 1 = 1 THEN crc := (crc >> 1) # 3988292384; ELSE crc := crc >> 1; END IF;
        END LOOP;
    END LOOP;
    RETURN crc # 4294967295;
END $$;
CREATE FUNCTION pg_temp.base62(n bigint, width int) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    digits text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    out text := '';
BEGIN
    FOR i IN 1 .. width LOOP
        out := substr(digits, (n % 62)::int + 1, 1) || out;
        n := n / 62;
    END LOOP;
    RETURN out;
END $$;

SELECT is(pg_temp.crc32('123456789'::bytea), 3421780262, 'the reference CRC32 gives the standard check value');

-- Shape and checksum of generated keys
CREATE TEMP TABLE k AS
SELECT crm_security.generate_api_key() AS key FROM generate_series(1, 10000);
SELECT is((SELECT count(DISTINCT key) FROM k), 10000::bigint, '10,000 generated keys are all different');
SELECT ok((SELECT bool_and(key ~ '^crm_live_[0-9A-Za-z]{36}$') FROM k),
          'every key is crm_live_ and 36 base62 characters');
SELECT ok((SELECT bool_and(crm_security.api_key_format_valid(key)) FROM k), 'every generated key is well-formed');
SELECT ok((SELECT bool_and(right(key, 6) = pg_temp.base62(pg_temp.crc32(convert_to(left(key, -6), 'UTF8')), 6))
             FROM (SELECT key FROM k LIMIT 20) s),
          'the last 6 characters are the CRC32 of the rest in base62');
-- 30 body characters from 62 letters: each character appears at each position
SELECT ok((SELECT count(DISTINCT substr(key, 10 + p, 1)) = 62 FROM k, generate_series(0, 29) p
            GROUP BY p ORDER BY 1 LIMIT 1),
          'every position of the body takes all 62 characters');
SELECT ok((SELECT min(c) > 9000 * 0.8 / 62 * 30 AND max(c) < 10000 * 1.2 / 62 * 30
             FROM (SELECT count(*) c FROM k, generate_series(0, 29) p GROUP BY substr(key, 10 + p, 1)) s),
          'the characters of the body are about uniform (no modulo bias)');

-- Prefixes
SELECT ok(crm_security.generate_api_key('svc') ~ '^svc_[0-9A-Za-z]{36}$', 'a prefix of one word');
SELECT ok(crm_security.api_key_format_valid(crm_security.generate_api_key('a_b_c1')), 'a prefix with single underscores');
SELECT ok(crm_security.api_key_format_valid(crm_security.generate_api_key(repeat('p', 32))), 'a prefix of 32 characters');
SELECT throws_ok($$SELECT crm_security.generate_api_key(repeat('p', 33))$$, '22023', 'invalid API key prefix', 'a prefix of 33 characters');
SELECT throws_ok($$SELECT crm_security.generate_api_key('')$$, '22023', NULL, 'an empty prefix');
SELECT throws_ok($$SELECT crm_security.generate_api_key('crm__live')$$, '22023', NULL, 'a doubled underscore');
SELECT throws_ok($$SELECT crm_security.generate_api_key('crm_')$$, '22023', NULL, 'a trailing underscore');
SELECT throws_ok($$SELECT crm_security.generate_api_key('_crm')$$, '22023', NULL, 'a leading underscore');
SELECT throws_ok($$SELECT crm_security.generate_api_key('Crm')$$, '22023', NULL, 'an uppercase letter');
SELECT throws_ok($$SELECT crm_security.generate_api_key('1crm')$$, '22023', NULL, 'a leading digit');
SELECT throws_ok($$SELECT crm_security.generate_api_key('crm-live')$$, '22023', NULL, 'a hyphen');
SELECT throws_ok($$SELECT crm_security.generate_api_key('crmé')$$, '22023', NULL, 'a non-ASCII letter');
SELECT is(crm_security.generate_api_key(NULL), NULL, 'NULL prefix: NULL (strict)');

-- Typos, truncations, wrong prefixes and checksums are refused without a lookup
SELECT k.key AS good FROM k LIMIT 1 \gset
SELECT ok(NOT crm_security.api_key_format_valid(left(:'good', -1)), 'truncated by one character');
SELECT ok(NOT crm_security.api_key_format_valid(:'good' || 'A'), 'one character too many');
SELECT ok(NOT crm_security.api_key_format_valid('crm_test' || substr(:'good', 9)), 'another prefix, same body and checksum');
SELECT ok(NOT crm_security.api_key_format_valid(left(:'good', -6) || 'AAAAAA'), 'a wrong checksum');
SELECT ok((SELECT bool_and(NOT crm_security.api_key_format_valid(
                  overlay(:'good' placing (CASE WHEN substr(:'good', p, 1) = 'x' THEN 'y' ELSE 'x' END) from p for 1)))
             FROM generate_series(10, length(:'good')) p),
          'every one-character typo in the body or checksum');
SELECT ok((SELECT bool_and(NOT crm_security.api_key_format_valid(
                  overlay(:'good' placing substr(:'good', p + 1, 1) || substr(:'good', p, 1) from p for 2)))
             FROM generate_series(10, length(:'good') - 1) p
            WHERE substr(:'good', p, 1) <> substr(:'good', p + 1, 1)),
          'every swap of two neighbouring characters');
SELECT ok(NOT crm_security.api_key_format_valid(replace(:'good', 'crm_live_', 'crm_live-')), 'the separator replaced');
SELECT ok(NOT crm_security.api_key_format_valid(upper(:'good')), 'upper-cased');
SELECT ok(NOT crm_security.api_key_format_valid(' ' || :'good'), 'leading whitespace');
SELECT is(crm_security.api_key_format_valid(NULL), false, 'NULL: false');
SELECT is(crm_security.api_key_format_valid(''), false, 'empty: false');
SELECT is(crm_security.api_key_format_valid(repeat('a', 1048576)), false, '1 MB: false');
SELECT is(crm_security.api_key_format_valid('crm_live_' || repeat('é', 36)), false, 'non-ASCII: false');
SELECT is(crm_security.api_key_format_valid(E'crm_live_\x01' || repeat('A', 35)), false, 'a control character: false');
SELECT is((SELECT provolatile::text || proparallel::text || proisstrict::text FROM pg_proc
            WHERE oid = 'crm_security.api_key_format_valid(text)'::regprocedure), 'isfalse',
          'api_key_format_valid is IMMUTABLE, PARALLEL SAFE and answers NULL itself');

-- Hashing: SHA-256 without a pepper, HMAC-SHA256 with it
SELECT is(crm_security.hash_api_key(:'good'), digest(:'good', 'sha256'), 'without a pepper: SHA-256');
SET LOCAL crm_security.api_key_pepper = 'pepper-0123456789abcdef0123456789abcdef';
SELECT is(crm_security.hash_api_key(:'good'),
          hmac(:'good', 'pepper-0123456789abcdef0123456789abcdef', 'sha256'), 'with a pepper: HMAC-SHA256');
SELECT is(current_setting('crm_security.api_key_pepper'), '(set)', 'even a superuser reads "(set)", never the pepper');
SELECT throws_ok($$SET LOCAL crm_security.api_key_pepper = 'short'$$, '22023', 'an API key pepper is too short',
                 'a pepper shorter than 32 bytes is refused');
SELECT throws_ok(format($$ALTER DATABASE %I SET crm_security.api_key_pepper = 'pepper-0123456789abcdef0123456789abcdef'$$, current_database()),
                 '22023', 'an API key pepper cannot be stored in the catalog', 'ALTER DATABASE ... SET is refused');
SELECT throws_ok($$CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql SET crm_security.api_key_pepper = 'pepper-0123456789abcdef0123456789abcdef' AS 'SELECT 1'$$,
                 '22023', NULL, 'a function''s SET clause is refused');

-- What other roles see
CREATE ROLE regress_ak_reader;
CREATE ROLE regress_ak_settings;
GRANT pg_read_all_settings TO regress_ak_settings;
SET LOCAL ROLE regress_ak_reader;
SELECT throws_ok($$SELECT current_setting('crm_security.api_key_pepper')$$, '42501', NULL,
                 'a non-superuser cannot read the pepper with current_setting');
SELECT throws_ok($$SHOW crm_security.api_key_pepper$$, '42501', NULL, '... nor with SHOW');
SELECT is((SELECT count(*) FROM pg_settings WHERE name LIKE 'crm_security.api_key_pepper%'), 0::bigint,
          '... nor in pg_settings');
SELECT throws_ok($$SET crm_security.api_key_pepper = 'pepper-0123456789abcdef0123456789abcdef'$$, '42501', NULL,
                 '... and cannot set it');
RESET ROLE;
SET LOCAL ROLE regress_ak_settings;
SELECT is(current_setting('crm_security.api_key_pepper'), '(set)',
          'a member of pg_read_all_settings reads "(set)", not the pepper');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
