-- Audit log: the row images and hashes written by the trigger, for every kind of column
-- and hostile text.  The trigger renders the canonical text of a row image while building
-- it; these checks compare it with what the stored values give through PostgreSQL's own
-- output functions (audit_canonical_entry, verify_audit_log) and with to_jsonb().
SET client_min_messages = warning;
BEGIN;
SELECT plan(18);

-- Scalars only (the direct path): names and values that need escaping, every number form.
CREATE TABLE public.tap_canon_s (
  "k""ey\" text, id int8,
  "naïve ✓" text, "tab	name" varchar(40), "NULL" text,
  i2 int2, i4 int4, i8 int8, n numeric, b bool,
  d date, ts timestamp, tstz timestamptz,
  u uuid, iv interval, ip inet, by bytea, "j scalar" jsonb, c char(3), f8 float8,
  PRIMARY KEY ("k""ey\", id));
SELECT crm_security.enable_audit('public.tap_canon_s') IS NULL AS enabled \g /dev/null
INSERT INTO public.tap_canon_s VALUES
  (E'q"uo\\te\n', -9223372036854775808, E'ctl \x01\x02\x1f \b\f\r\t end', 'é ✓ 😀', '',
   -32768, -2147483648, 9223372036854775807, 1.50, true,
   '2024-02-29', '2024-01-01 12:34:56.789', '2024-01-01 00:00+00',
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 2 hours', '10.0.0.1/8', E'\\x00ff', '"str"', 'ab', 1.5e300),
  ('k2', 0, 'NULL', 'null', 'x', 0, 0, 0, 'NaN', false,
   'infinity', '-infinity', 'infinity',
   NULL, NULL, NULL, NULL, 'null', NULL, 'NaN'),
  ('k3', 1, NULL, NULL, NULL, NULL, NULL, NULL, 'Infinity', NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, '12.50', NULL, '-Infinity'),
  ('k4', 2, repeat('a"b\', 5000), NULL, NULL, 1, 2, 3, '-Infinity', NULL, '4713-01-01 BC', NULL, NULL,
   NULL, NULL, NULL, NULL, 'true', NULL, -0.0),
  ('k5', 3, NULL, NULL, NULL, NULL, NULL, NULL, 123456789012345678901234567890.123456789, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  ('k6', 4, NULL, NULL, NULL, NULL, NULL, NULL, -0.000000000001, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL);
UPDATE public.tap_canon_s SET i4 = i4 + 1, n = n * 2, "naïve ✓" = E'new\nline' WHERE id IN (0, -9223372036854775808);
UPDATE public.tap_canon_s SET d = d WHERE id = 2;
DELETE FROM public.tap_canon_s WHERE id = 4;

-- Containers (the general path): jsonb objects and arrays, arrays, a composite.
CREATE TYPE public.tap_pair AS (a int, b text);
CREATE TABLE public.tap_canon_c (
  id int PRIMARY KEY, doc jsonb, tags text[], nums int[], pair public.tap_pair, note text, j json);
SELECT crm_security.enable_audit('public.tap_canon_c') IS NULL AS enabled \g /dev/null
INSERT INTO public.tap_canon_c VALUES
  (1, '{"b": [1, {"x": "\u0001\""}], "a": null, "aa": 1.0}', ARRAY['x y', NULL, '', 'NULL'], ARRAY[1, -2],
   ROW(1, E'q"\\'), E'\t', '{"z": 1,  "a" : [ ]}'),
  (2, '[]', '{}', NULL, NULL, NULL, '"s"'),
  (3, '{}', NULL, '{{1,2},{3,4}}', ROW(NULL, NULL), 'plain', 'null');
UPDATE public.tap_canon_c SET doc = doc || '{"n": 2}' WHERE jsonb_typeof(doc) = 'object';
DELETE FROM public.tap_canon_c WHERE id = 2;

CREATE TEMP TABLE tap_entries AS
  SELECT * FROM crm_security.audit_log
   WHERE table_name IN ('public.tap_canon_s', 'public.tap_canon_c') AND kind = 'row';

SELECT is((SELECT count(*) FROM tap_entries WHERE table_name = 'public.tap_canon_s'), 10::bigint,
  'every change of the scalar table is logged');
SELECT is((SELECT count(*) FROM tap_entries WHERE table_name = 'public.tap_canon_c'), 6::bigint,
  'every change of the container table is logged');
SELECT is((SELECT count(*) FROM tap_entries
            WHERE entry_hash IS DISTINCT FROM hmac(crm_security.audit_canonical_entry(id), pg_read_binary_file('crm_security/audit_entry.key'), 'sha256')), 0::bigint,
  'the hash written by the trigger is the hash of the canonical form of the stored entry');
SELECT is((SELECT count(*) FROM tap_entries e
            WHERE position(convert_to('new_row=' || length(convert_to(e.new_row::text, 'UTF8')) || ':' || e.new_row::text, 'UTF8')
                           IN crm_security.audit_canonical_entry(e.id)) = 0), 0::bigint,
  'the canonical form holds the row image as jsonb text, with its byte length');
SELECT is((SELECT array_agg(id ORDER BY id) FROM tap_entries e WHERE operation = 'INSERT' AND table_name = 'public.tap_canon_s'
            AND new_row IS DISTINCT FROM (SELECT to_jsonb(t) FROM public.tap_canon_s t WHERE t.id = (e.record_key->>'id')::int8)
            AND (record_key->>'id')::int8 <> 4
            AND NOT EXISTS (SELECT FROM tap_entries u WHERE u.operation = 'UPDATE' AND u.record_key = e.record_key)),
          NULL::bigint[],
  'INSERT images of unchanged rows equal to_jsonb() of the row');
SELECT is((SELECT new_row FROM tap_entries
            WHERE operation = 'UPDATE' AND record_key = '{"id": 0, "k\"ey\\": "k2"}'),
          (SELECT to_jsonb(t) FROM public.tap_canon_s t WHERE id = 0),
  'UPDATE image equals to_jsonb() of the new row (NaN, infinities, the jsonb null)');
SELECT is((SELECT count(*) FROM tap_entries e JOIN public.tap_canon_c t ON e.table_name = 'public.tap_canon_c' AND t.id::int8 = (e.record_key->>'id')::int8
            WHERE e.new_row IS DISTINCT FROM to_jsonb(t) AND e.id = (SELECT max(id) FROM tap_entries f WHERE f.record_key = e.record_key)),
          0::bigint,
  'container images equal to_jsonb() of the row');
SELECT is((SELECT record_key::text FROM tap_entries WHERE operation = 'INSERT' AND new_row->>'c' = 'ab '),
          E'{"id": -9223372036854775808, "k\\"ey\\\\": "q\\"uo\\\\te\\n"}',
  'a composite key with escapes and the smallest int8');
SELECT is((SELECT new_row->>'naïve ✓' FROM tap_entries WHERE table_name = 'public.tap_canon_s' AND operation = 'INSERT' AND record_key->>'id' = '-9223372036854775808'),
          E'ctl \x01\x02\x1f \b\f\r\t end', 'control characters survive the row image');
SELECT ok((SELECT bool_and(position(convert_to(E'"ctl \\u0001\\u0002\\u001f \\b\\f\\r\\t end"', 'UTF8')
                                    IN crm_security.audit_canonical_entry(id)) > 0)
             FROM tap_entries WHERE table_name = 'public.tap_canon_s' AND operation = 'INSERT' AND record_key->>'id' = '-9223372036854775808'),
  'control characters are escaped in the canonical text as jsonb output escapes them');
SELECT is((SELECT new_row->>'n' FROM tap_entries WHERE table_name = 'public.tap_canon_s' AND operation = 'INSERT' AND record_key->>'id' = '-9223372036854775808'),
          '1.50', 'numeric keeps its scale');
SELECT is((SELECT new_row->>'n' FROM tap_entries WHERE table_name = 'public.tap_canon_s' AND operation = 'INSERT' AND record_key->>'id' = '2'),
          '-Infinity', 'an infinite numeric is a string, as to_jsonb() makes it');
SELECT is((SELECT changed_columns FROM tap_entries WHERE table_name = 'public.tap_canon_s' AND operation = 'UPDATE' AND record_key->>'id' = '0'),
          ARRAY['naïve ✓', 'i4'], 'changed columns in column order (NaN * 2 is NaN: unchanged)');
SELECT is((SELECT changed_columns FROM tap_entries WHERE table_name = 'public.tap_canon_s' AND operation = 'UPDATE' AND record_key->>'id' = '2'),
          '{}'::text[], 'an UPDATE that changes nothing has no changed columns');
SELECT is((SELECT old_row->>'NULL' FROM tap_entries WHERE operation = 'DELETE' AND table_name = 'public.tap_canon_s'),
          NULL, 'a column named NULL holding NULL');
-- The images are written in jsonb's binary format directly: same stored size as
-- PostgreSQL's own (the reparsed value, stored alike), and every member found by key (the lookup reads the entry
-- offsets, stored every 32 entries: tap_canon_s has 20 columns, so 40 entries).
CREATE TEMP TABLE tap_images AS
  SELECT e.id, i.img, i.img::text::jsonb AS re FROM tap_entries e, LATERAL (VALUES (e.record_key), (e.old_row), (e.new_row)) i(img)
   WHERE i.img IS NOT NULL;
SELECT is((SELECT count(*) FROM tap_images
            WHERE pg_column_size(img) <> pg_column_size(re) OR img <> re), 0::bigint,
  'row images have the size and value of the same jsonb built by PostgreSQL');
SELECT is((SELECT count(*) FROM tap_images i, LATERAL jsonb_object_keys(i.img::text::jsonb) k
            WHERE i.img -> k IS DISTINCT FROM (i.img::text::jsonb) -> k OR NOT i.img ? k), 0::bigint,
  'every member of every row image is found by its key');
SELECT is((SELECT ok FROM crm_security.verify_audit_log()), true, 'the log verifies');

SELECT * FROM finish();
ROLLBACK;
