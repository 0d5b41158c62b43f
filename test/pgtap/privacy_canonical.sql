-- Personal columns of every kind (docs/privacy.md, "One walk"): the canonical text of an
-- image with envelopes is written while the envelopes are made, not rendered again from
-- the stored value; the entry hashes must still be what verification renders.  Strings
-- that need escaping, numbers, booleans, nested jsonb, NULLs, personal and plain, through
-- INSERT, UPDATE and DELETE; then sealing and verification pass and an auditor reads every
-- value back.  Statements commit one by one; the database is this file's own.
SET client_min_messages = warning;

CREATE TABLE public.tap_kinds (id int PRIMARY KEY, name text, prefs jsonb, score numeric,
                               vip boolean, note text, extra jsonb);
SELECT crm_security.enable_audit('public.tap_kinds', NULL, ARRAY['name', 'prefs', 'score', 'vip']) \g /dev/null
INSERT INTO public.tap_kinds VALUES
  (1, E'Zoë "the" \\ O''Brien\n\ttab \u00e9 \U0001F600', '{"b": [1, 2.50, "x\"y"], "a": {"nested": null}}', 12.3400, true, E'plain "quoted"\n', '{"k": "v"}'),
  (2, '', '[]', -0.0, false, NULL, NULL),
  (3, NULL, NULL, NULL, NULL, 'only plain', '"scalar"'),
  (4, repeat('long ', 2000), '{"deep": {"deeper": {"deepest": [true, false, null]}}}', 'NaN', true, 'n', '12');
UPDATE public.tap_kinds SET name = name || ' changed', score = score + 1, extra = '{"k": "w"}' WHERE id IN (1, 2);
UPDATE public.tap_kinds SET note = 'note only' WHERE id = 3;
DELETE FROM public.tap_kinds WHERE id = 4;
-- More than 32 members (jsonb stores every 32nd member's offset, not its length), personal
-- ones among the first and past the 32nd: the envelopes are nested objects written into
-- the image's binary form directly.
SELECT format('CREATE TABLE public.tap_wide (id int PRIMARY KEY, %s)',
              string_agg(format('c%s text', lpad(i::text, 2, '0')), ', ')) FROM generate_series(1, 40) i \gexec
SELECT crm_security.enable_audit('public.tap_wide', NULL, ARRAY['c05', 'c32', 'c33', 'c40']) \g /dev/null
SELECT format('INSERT INTO public.tap_wide VALUES (1, %s)',
              string_agg(format('%L', 'value ' || i), ', ')) FROM generate_series(1, 40) i \gexec
UPDATE public.tap_wide SET c33 = NULL, c34 = 'changed' WHERE id = 1;

SELECT plan(10);
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE table_name = 'public.tap_kinds'), 8::bigint,
          'eight row entries');
SELECT is((SELECT count(*) FROM crm_security.audit_log
            WHERE table_name IN ('public.tap_kinds', 'public.tap_wide')
              AND (new_row IS DISTINCT FROM new_row::text::jsonb
                   OR old_row IS DISTINCT FROM old_row::text::jsonb
                   OR jsonb_path_query_array(coalesce(new_row, old_row), '$.*.enc')::text
                      IS DISTINCT FROM jsonb_path_query_array(coalesce(new_row, old_row)::text::jsonb, '$.*.enc')::text)),
          0::bigint, 'every stored image reads as what jsonb makes of its own text (envelopes nested in the binary form)');
SELECT is((SELECT array_agg(k ORDER BY k) FROM crm_security.audit_log l, jsonb_each(l.new_row) e(k, v)
            WHERE l.table_name = 'public.tap_wide' AND l.operation = 'INSERT'
              AND jsonb_typeof(v) = 'object' AND v->>'enc' ~ '^crm[12]\.'),
          ARRAY['c05', 'c32', 'c33', 'c40'], 'the personal members of a wide row are envelopes, found by key');
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE table_name = 'public.tap_wide'
              AND (coalesce(new_row::text, '') || coalesce(old_row::text, '')) ~ 'value (5|32|33|40)"'),
          0::bigint, 'no personal value of the wide row in clear');
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE table_name = 'public.tap_kinds'
             AND (new_row::text ~ 'O''Brien|nested|deepest' OR old_row::text ~ 'O''Brien|nested|deepest')),
          0::bigint, 'no personal value in clear');
SELECT cmp_ok(crm_security.seal_audit_log(), '>=', 8::bigint, 'the entries are sealed');
SELECT is((SELECT ok FROM crm_security.verify_audit_log()), true,
          'the chain verifies: the hashes cover exactly the stored images');
SELECT is((SELECT count(*) FROM crm_security.audit_log l
            WHERE table_name = 'public.tap_kinds'
              AND crm_security.audit_personal_data(l.id)->'new_row' IS DISTINCT FROM
                  (SELECT to_jsonb(k) FROM public.tap_kinds k WHERE k.id = (l.record_key->>'id')::int)
              AND l.operation = 'UPDATE'
              AND l.id IN (SELECT max(id) FROM crm_security.audit_log WHERE table_name = 'public.tap_kinds'
                           AND operation = 'UPDATE' GROUP BY record_key)),
          0::bigint, 'an auditor reads each row''s last image back exactly (the superuser here)');
SELECT is((SELECT crm_security.audit_personal_data(id)->'old_row'->'prefs' FROM crm_security.audit_log
            WHERE table_name = 'public.tap_kinds' AND operation = 'DELETE'),
          '{"deep": {"deeper": {"deepest": [true, false, null]}}}'::jsonb, 'a nested jsonb value decrypts from a DELETE''s old image');
SELECT is((SELECT crm_security.audit_personal_data(max(id)) FROM crm_security.audit_log
            WHERE table_name = 'public.tap_wide'),
          (SELECT jsonb_build_object('old_row', to_jsonb(w) || '{"c33": "value 33", "c34": "value 34"}',
                                     'new_row', to_jsonb(w), 'metadata', NULL)
             FROM public.tap_wide w),
          'an auditor reads both images of the wide row back exactly');
SELECT * FROM finish();

DROP TABLE public.tap_kinds, public.tap_wide;
