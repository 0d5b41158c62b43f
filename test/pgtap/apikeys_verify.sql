-- API keys: verification, every refusal reason, networks, rotation, revocation, limits,
-- usage (this cluster runs without shared_preload_libraries: the table mode; the shared
-- counters are tested by test/scripts/apikeys_concurrency.sh), privileges, pepper schemes,
-- and hostile input (docs/api-keys.md).
SET client_min_messages = warning;
BEGIN;
SELECT plan(109);

-- 'SQLSTATE: detail' of a statement's error, or 'ok'.
\ir include/err.sql

CREATE TEMP TABLE keys (label text PRIMARY KEY, id uuid, key text);
GRANT SELECT, INSERT ON keys TO PUBLIC;
INSERT INTO keys SELECT 'plain', * FROM crm_security.create_api_key('plain', 'acme', '{crm:deals:write,crm:deals:read,read}');
INSERT INTO keys SELECT 'nets', * FROM crm_security.create_api_key('nets', 'acme', '{read}',
    allowed_ips => '{10.0.0.0/8,192.168.1.7/32,2001:db8::/32}');
INSERT INTO keys SELECT 'svc', * FROM crm_security.create_api_key('svc', 'acme', '{read}', 'svc',
    allowed_services => '{billing,mailer}');
INSERT INTO keys SELECT 'admin', * FROM crm_security.create_api_key('admin', NULL, '{admin,write}');
INSERT INTO keys SELECT 'daily', * FROM crm_security.create_api_key('daily', 'acme', '{}', rate_limit_per_day => 3);
INSERT INTO keys SELECT 'exp', * FROM crm_security.create_api_key('exp', 'acme', '{read}', expires_at => now() + interval '1 day');
SELECT key AS plain, id AS plain_id FROM keys WHERE label = 'plain' \gset
SELECT key AS nets FROM keys WHERE label = 'nets' \gset
SELECT key AS svc FROM keys WHERE label = 'svc' \gset

-- Success
SELECT results_eq($$SELECT id, tenant_id, scopes, name FROM crm_security.verify_api_key('$$ || :'plain' || $$')$$,
                  $$SELECT id, 'acme'::text, '{crm:deals:write,crm:deals:read,read}'::text[], 'plain'::text FROM keys WHERE label = 'plain'$$,
                  'a key verifies: its id, tenant, scopes and name');
SELECT is((SELECT scopes FROM crm_security.verify_api_key((SELECT key FROM keys WHERE label = 'admin'))),
          '{admin,write,*,read}', '"admin" implies everything ("*"), "write" implies "read"');
SELECT is((SELECT tenant_id FROM crm_security.verify_api_key((SELECT key FROM keys WHERE label = 'admin'))),
          NULL, 'a key of no tenant');
SELECT ok(crm_security.has_permission((SELECT scopes FROM crm_security.verify_api_key((SELECT key FROM keys WHERE label = 'admin'))),
                                      'crm:contacts:delete'), 'the effective scopes of "admin" grant any permission');
SELECT is((SELECT display_prefix FROM crm_security.api_keys WHERE name = 'plain'), left(:'plain', 15),
          'the display prefix is the prefix and 6 characters of the body');

-- Every refusal reason, with its detail
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', crm_security.generate_api_key())),
          '28000: The API key is unknown.', 'an unknown (well-formed) key');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', left(:'plain', -1) || CASE WHEN right(:'plain', 1) = 'x' THEN 'y' ELSE 'x' END)),
          '28000: The API key is not well-formed: its prefix, length or checksum is wrong.', 'a typo: refused by the checksum');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', 'crm_test' || substr(:'plain', 9))),
          '28000: The API key is not well-formed: its prefix, length or checksum is wrong.', 'a wrong prefix');
SELECT is(pg_temp.err($$SELECT * FROM crm_security.verify_api_key(NULL)$$), '28000: No API key was given.', 'NULL');
SELECT is(pg_temp.err($$SELECT * FROM crm_security.verify_api_key('')$$),
          '28000: The API key is not well-formed: its prefix, length or checksum is wrong.', 'empty');
SELECT is(pg_temp.err($$SELECT * FROM crm_security.verify_api_key(repeat('k', 1048576))$$),
          '28000: The API key is not well-formed: it is longer than any key.', '1 MB');
SELECT is(pg_temp.err($$SELECT * FROM crm_security.verify_api_key(convert_from('\x63726d5fff'::bytea, 'UTF8'))$$),
          '22021: ', 'non-UTF-8 bytes never reach the function (22021)');
SELECT is(pg_temp.err($$SELECT * FROM crm_security.verify_api_key('crm_live_' || repeat('é', 36))$$),
          '28000: The API key is not well-formed: it is longer than any key.', 'non-ASCII');
SELECT is(pg_temp.err($$SELECT * FROM crm_security.verify_api_key('crm_live_' || repeat('é', 10))$$),
          '28000: The API key is not well-formed: its prefix, length or checksum is wrong.', 'non-ASCII, as long as a key');
UPDATE crm_security.api_keys SET expires_at = now() WHERE name = 'exp';
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', (SELECT key FROM keys WHERE label = 'exp'))),
          '28000: The API key expired.', 'expired: expires_at <= now()');
UPDATE crm_security.api_keys SET expires_at = now() + interval '1 second' WHERE name = 'exp';
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', (SELECT key FROM keys WHERE label = 'exp'))),
          'ok', '... and not a moment before');

-- Services
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L, %L)', :'svc', 'billing')), 'ok', 'an allowed service');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L, %L)', :'svc', 'reports')),
          '28000: The API key may not be used for this service.', 'another service');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', :'svc')),
          '28000: The API key may not be used for this service.', 'no service given to a key restricted to services');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L, %L)', :'svc', repeat('b', 1048576))),
          '28000: The API key may not be used for this service.', 'a 1 MB service name');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L, %L)', :'plain', 'anything')), 'ok',
          'a key without allowed services serves any service');

-- Networks: IPv4, IPv6, IPv4-mapped IPv6
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L, NULL, %L)', :'nets', a)), r, a || ': ' || r)
  FROM (VALUES ('10.1.2.3', 'ok'), ('10.255.255.255', 'ok'), ('192.168.1.7', 'ok'),
               ('192.168.1.8', '28000: The API key may not be used from this address.'),
               ('11.0.0.1', '28000: The API key may not be used from this address.'),
               ('2001:db8::1', 'ok'), ('2001:db8:ffff::1', 'ok'),
               ('2001:db9::1', '28000: The API key may not be used from this address.'),
               ('::ffff:10.1.2.3', 'ok'), ('::ffff:192.168.1.7', 'ok'),
               ('::ffff:11.0.0.1', '28000: The API key may not be used from this address.'),
               ('::10.1.2.3', '28000: The API key may not be used from this address.'),
               ('::1', '28000: The API key may not be used from this address.')) v(a, r);
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', :'nets')),
          '28000: The API key may not be used from this address.', 'no address given to a key restricted to networks');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L, NULL, %L)', :'nets', '10.0.0.0/8')),
          '22023: The address has a netmask of 8 bits.', 'a network instead of a client address: 22023');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L, NULL, %L)', :'nets', 'fe80::1%eth0')),
          '22P02: ', 'an IPv6 zone: 22P02 (refused by the inet type)');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L, NULL, %L)', :'nets', 'garbage')),
          '22P02: ', 'a garbage address: 22P02');
INSERT INTO keys SELECT 'mapped', * FROM crm_security.create_api_key('mapped', 'acme', '{read}',
    allowed_ips => '{::ffff:172.16.0.0/108}');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L, NULL, %L)', (SELECT key FROM keys WHERE label = 'mapped'), '172.16.3.4')),
          'ok', 'an IPv4 client matches an IPv4-mapped IPv6 network');

-- Rotation
SELECT crm_security.rotate_api_key(:'plain_id', '1 hour') AS plain2 \gset
SELECT isnt(:'plain2'::text, :'plain'::text, 'rotation returns a new key');
SELECT results_eq(format('SELECT id, tenant_id, scopes, name FROM crm_security.verify_api_key(%L)', :'plain2'),
                  format('SELECT id, tenant_id, scopes, name FROM crm_security.verify_api_key(%L)', :'plain'),
                  'the new key and the old one (in its grace period) are the same holder, scopes and tenant');
SELECT is((SELECT display_prefix FROM crm_security.api_keys WHERE name = 'plain'), left(:'plain2', 15),
          'the display prefix is the new key''s');
UPDATE crm_security.api_key_secrets SET valid_until = now() WHERE key_id = :'plain_id' AND valid_until IS NOT NULL;
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', :'plain')),
          '28000: The API key was replaced by a rotation and its grace period has ended.', 'after the grace period, the old key is refused');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', :'plain2')), 'ok', '... and the new one works');
SELECT crm_security.rotate_api_key(:'plain_id') AS plain3 \gset
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', :'plain2')),
          '28000: The API key was replaced by a rotation and its grace period has ended.', 'without a grace period, the old key is refused at once');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', :'plain3')), 'ok', '... and the new one works');
SELECT is((SELECT rate_limit_per_day FROM crm_security.api_keys WHERE name = 'daily'), 3, 'limits are kept by the row');
INSERT INTO keys SELECT 'rot', * FROM crm_security.create_api_key('rot', 'acme', '{read}', 'my_svc_2');
SELECT ok(crm_security.rotate_api_key(id) ~ '^my_svc_2_[0-9A-Za-z]{36}$', 'a rotated key keeps its prefix') FROM keys WHERE label = 'rot';
SELECT throws_ok(format('SELECT crm_security.rotate_api_key(%L, %L)', :'plain_id', '-1 second'), '22023', 'invalid grace period', 'a negative grace');
SELECT throws_ok(format('SELECT crm_security.rotate_api_key(%L, NULL)', :'plain_id'), '22023', 'invalid grace period', 'a NULL grace');
SELECT throws_ok($$SELECT crm_security.rotate_api_key(NULL)$$, '22023', NULL, 'a NULL id');
SELECT throws_ok($$SELECT crm_security.rotate_api_key(gen_random_uuid())$$, '42704', NULL, 'an unknown id');

-- Revocation
SELECT lives_ok(format('SELECT crm_security.revoke_api_key(%L)', :'plain_id'), 'revoke');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', :'plain3')), '28000: The API key was revoked.', 'a revoked key is refused');
SELECT lives_ok(format('SELECT crm_security.revoke_api_key(%L)', :'plain_id'), 'revoking again is a no-op');
SELECT throws_ok(format('SELECT crm_security.rotate_api_key(%L)', :'plain_id'), '55000', NULL, 'a revoked key cannot be rotated');
SELECT throws_ok($$SELECT crm_security.revoke_api_key(gen_random_uuid())$$, '42704', NULL, 'revoking an unknown id');
SELECT throws_ok($$SELECT crm_security.revoke_api_key(NULL)$$, '22023', NULL, 'revoking NULL');

-- Audit: create, rotate and revoke are events with the id and display prefix, never the key
SELECT is((SELECT array_agg(operation ORDER BY id) FROM crm_security.audit_log WHERE resource_id = :'plain_id'),
          '{api_key.create,api_key.rotate,api_key.rotate,api_key.revoke}', 'creation, rotations and revocation are audit events');
SELECT is((SELECT metadata->>'display_prefix' FROM crm_security.audit_log WHERE resource_id = :'plain_id' AND operation = 'api_key.create'),
          left(:'plain', 15), '... with the display prefix');

-- Per-day limit (exact, with the retry time) and usage
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', key)), 'ok', 'use ' || g || ' of 3 a day')
  FROM keys, generate_series(1, 3) g WHERE label = 'daily';
SELECT matches(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', key)),
               '^53400: The key''s limit of 3 uses per day is reached; retry in [0-9]+ seconds\.$', 'the 4th use of the day: 53400 with the retry time')
  FROM keys WHERE label = 'daily';
SELECT is((SELECT use_count FROM crm_security.api_key_usage(id)), 3::bigint, 'usage counts the 3 successful uses, not the refusal')
  FROM keys WHERE label = 'daily';
SELECT * FROM crm_security.verify_api_key(:'nets', NULL, '10.9.9.9') \g /dev/null
SELECT is((SELECT last_used_ip FROM crm_security.api_key_usage(id)), '10.9.9.9'::inet, 'usage: the last address') FROM keys WHERE label = 'nets';
SELECT is((SELECT count(*) FROM crm_security.api_key_usage(gen_random_uuid())), 0::bigint, 'usage of an unknown key: no row');
SAVEPOINT s;
SELECT * FROM crm_security.verify_api_key(:'svc', 'billing') \g /dev/null
ROLLBACK TO s;
SELECT is((SELECT use_count FROM crm_security.api_key_usage(id)), 1::bigint,
          'without shared_preload_libraries a use rolls back with its transaction (documented)') FROM keys WHERE label = 'svc';

-- Pepper schemes
SET LOCAL crm_security.api_key_pepper = 'pepper-one-0123456789abcdef0123456789';
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L, %L)', :'svc', 'billing')), 'ok',
          'a key stored as SHA-256 still verifies once a pepper is set');
INSERT INTO keys SELECT 'peppered', * FROM crm_security.create_api_key('peppered', 'acme', '{read}');
SELECT is((SELECT hash_scheme FROM crm_security.api_key_secrets s JOIN keys k ON k.id = s.key_id WHERE label = 'peppered'),
          'hmac-sha256', 'a key made with a pepper is stored as HMAC-SHA256');
SELECT is((SELECT key_hash FROM crm_security.api_key_secrets s JOIN keys k ON k.id = s.key_id WHERE label = 'peppered'),
          (SELECT crm_security.hash_api_key(key) FROM keys WHERE label = 'peppered'), '... under hash_api_key()');
SET LOCAL crm_security.api_key_pepper = 'pepper-two-0123456789abcdef0123456789';
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', key)), '28000: The API key is unknown.',
          'after the pepper changes, a key stored under the old one is unknown') FROM keys WHERE label = 'peppered';
SET LOCAL crm_security.api_key_pepper_previous = 'pepper-one-0123456789abcdef0123456789';
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', key)), 'ok',
          '... and verifies again with the old one as api_key_pepper_previous') FROM keys WHERE label = 'peppered';
RESET crm_security.api_key_pepper;
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', key)), 'ok',
          'the previous pepper is tried even without a current one') FROM keys WHERE label = 'peppered';
RESET crm_security.api_key_pepper_previous;

-- Bad input to create_api_key
SELECT throws_ok($$SELECT crm_security.create_api_key(NULL, 't', '{}')$$, '22023', 'invalid API key name', 'a NULL name');
SELECT throws_ok($$SELECT crm_security.create_api_key('', 't', '{}')$$, '22023', 'invalid API key name', 'an empty name');
SELECT throws_ok($$SELECT crm_security.create_api_key(repeat('n', 1048576), 't', '{}')$$, '22023', 'invalid API key name', 'a 1 MB name');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', '', '{}')$$, '22023', 'invalid tenant', 'an empty tenant');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', NULL)$$, '22023', 'invalid scopes', 'NULL scopes');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', array_fill('read'::text, ARRAY[100000]))$$, '22023', 'invalid scopes', '100,000 scopes');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', '{{read},{write}}')$$, '22023', 'invalid scopes', 'a two-dimensional scope array');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', '{read,"crm::x"}')$$, '22023', 'invalid scope', 'a malformed scope');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', ARRAY['read', NULL])$$, '22023', 'invalid scope', 'a NULL scope');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', ARRAY[repeat('r', 1048576)])$$, '22023', 'invalid scope', 'a 1 MB scope');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', '{}', allowed_ips => (SELECT array_agg(('10.' || g / 65536 || '.' || g / 256 % 256 || '.' || g % 256)::cidr) FROM generate_series(1, 100000) g))$$,
                 '22023', 'invalid allowed networks', '100,000 networks');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', '{}', allowed_ips => '{}')$$, '22023', 'invalid allowed networks', 'no network at all (NULL means any)');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', '{}', allowed_ips => ARRAY['10.0.0.0/8', NULL]::cidr[])$$, '22023', 'invalid allowed networks', 'a NULL network');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', '{}', allowed_services => '{}')$$, '22023', 'invalid allowed services', 'no service at all');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', '{}', allowed_services => '{Billing}')$$, '22023', 'invalid allowed service', 'a malformed service');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', '{}', prefix => NULL)$$, '22023', 'invalid API key prefix', 'a NULL prefix');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', '{}', prefix => 'a__b')$$, '22023', 'invalid API key prefix', 'a bad prefix');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', '{}', expires_at => now())$$, '22023', NULL, 'an expiry in the past');
SELECT throws_ok($$SELECT crm_security.create_api_key('n', 't', '{}', rate_limit_per_minute => 0)$$, '22023', NULL, 'a limit of 0');
SELECT is(crm_security.hash_api_key(NULL), NULL, 'hash_api_key(NULL) is NULL');
SELECT is(length(crm_security.hash_api_key(repeat('k', 1048576))), 32, 'hash_api_key of 1 MB: 32 bytes');

-- Privileges: PUBLIC verifies; the admin role manages; nobody else reads or manages
CREATE ROLE regress_ak_app;
CREATE ROLE regress_ak_admin IN ROLE crm_security_api_admin;
SET LOCAL ROLE regress_ak_app;
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L, %L)', :'svc', 'billing')), 'ok', 'any role may verify a key');
SELECT is((SELECT name FROM crm_security.verify_api_key(:'svc', 'billing')) || ' as ' || current_user, 'svc as regress_ak_app',
          'verification runs as the tables'' owner and returns to the caller''s identity');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.verify_api_key(%L)', crm_security.generate_api_key())) || ' ' || current_user,
          '28000: The API key is unknown. regress_ak_app', '... also after a refusal');
SELECT is(pg_temp.err('SELECT count(*) FROM crm_security.api_keys'), '42501: ', 'PUBLIC cannot read api_keys');
SELECT is(pg_temp.err('SELECT count(*) FROM crm_security.api_key_secrets'), '42501: ', '... nor api_key_secrets');
SELECT is(pg_temp.err($$SELECT crm_security.create_api_key('x', 't', '{}')$$), '42501: ', '... nor create keys');
SELECT is(pg_temp.err(format('SELECT crm_security.revoke_api_key(%L)', (SELECT id FROM keys WHERE label = 'svc'))), '42501: ', '... nor revoke them');
SELECT is(pg_temp.err(format('SELECT * FROM crm_security.api_key_usage(%L)', (SELECT id FROM keys WHERE label = 'svc'))), '42501: ', '... nor read usage');
RESET ROLE;
SET LOCAL ROLE regress_ak_admin;
INSERT INTO keys SELECT 'by_admin', * FROM crm_security.create_api_key('by admin', 'acme', '{read}');
SELECT is((SELECT created_by FROM crm_security.api_keys WHERE name = 'by admin'), 'regress_ak_admin', 'the admin role creates keys, recorded as their creator');
SELECT is(pg_temp.err(format('SELECT crm_security.rotate_api_key(%L)', (SELECT id FROM keys WHERE label = 'by_admin'))), 'ok', '... rotates them');
SELECT is(pg_temp.err(format('SELECT crm_security.revoke_api_key(%L)', (SELECT id FROM keys WHERE label = 'by_admin'))), 'ok', '... revokes them');
SELECT is(pg_temp.err('SELECT key_hash FROM crm_security.api_key_secrets'), '42501: ', '... but cannot read the hashes');
RESET ROLE;

-- No key in any table: the random part of every key made above, in the text of every row
-- of every table (the catalogs and the audit log included), the temporary test table apart
CREATE FUNCTION pg_temp.tables_with_keys() RETURNS bigint LANGUAGE sql AS $$
SELECT count(*) FROM keys k,
       LATERAL (SELECT c.oid::regclass AS t FROM pg_class c
                 WHERE c.relkind IN ('r', 'p', 'm') AND c.relnamespace <> 'pg_toast'::regnamespace
                   AND c.relpersistence <> 't') t,
       LATERAL (SELECT (xpath('/row/c/text()', query_to_xml(
                    format('SELECT count(*) AS c FROM %s x WHERE x::text LIKE %L', t.t, '%' || substr(k.key, length(k.key) - 35, 30) || '%'),
                    false, true, '')))[1]::text::int AS n) c
 WHERE c.n > 0 $$;
CREATE TABLE public.ak_leak AS SELECT 'prefix ' || key || ' suffix' AS v FROM keys WHERE label = 'svc';
SELECT is(pg_temp.tables_with_keys(), 1::bigint, 'the scan finds a key planted in a table (the check below can fail)');
DROP TABLE public.ak_leak;
SELECT is(pg_temp.tables_with_keys(), 0::bigint, 'no key (its random part) appears in any table');

SELECT * FROM finish();
ROLLBACK;
