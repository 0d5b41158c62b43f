-- Envelope formats of personal values (docs/privacy.md, "Envelopes"): crm2, the default,
-- seals the personal values of an image together (the envelope in the first personal
-- member, a reference naming it in the others); crm1, written when
-- crm_security.audit_envelope_format = crm1, one envelope per value.  Both are always
-- read.  Moving, removing, copying or adding any part fails to decrypt; forget_subject()
-- and audit_subject_data() find both formats.  Statements commit one by one; the database is this file's own; the
-- roles are dropped at the end.
SET client_min_messages = warning;

CREATE ROLE tap_env_app;
CREATE ROLE tap_env_auditor;
GRANT crm_security_auditor TO tap_env_auditor;
CREATE TABLE public.tap_env (id int PRIMARY KEY, tenant_id text, name text, email text, phone text,
                             notes jsonb, plain text);
GRANT ALL ON public.tap_env TO tap_env_app;
SELECT crm_security.enable_audit('public.tap_env', NULL, ARRAY['name', 'email', 'notes']) \g /dev/null
CREATE TABLE public.tap_default AS SELECT current_setting('crm_security.audit_envelope_format') AS format;
INSERT INTO public.tap_env VALUES
  (1, 't1', 'Ann Sealperson', 'ann.seal@example.org', '555-1', '{"diet": "vegan", "n": [1, 2]}', 'x'),
  (2, 't1', 'Ben Sealperson', NULL, '555-2', NULL, 'y'),
  (3, 't1', NULL, NULL, '555-3', NULL, 'z');
SET crm_security.audit_envelope_format = crm1;
INSERT INTO public.tap_env VALUES
  (4, 't1', 'Cat Oldformat', 'cat.old@example.org', '555-4', NULL, 'w'),
  (5, 't1', 'Ann Sealperson', 'ann.seal@example.org', '555-1', '{"diet": "vegan", "n": [1, 2]}', 'x');
RESET crm_security.audit_envelope_format;
UPDATE public.tap_env SET email = 'cat.new@example.org' WHERE id = 4;
-- Twenty personal columns: the names sealed outgrow the seal's own room (8, then 16).
SELECT format('CREATE TABLE public.tap_wide20 (id int PRIMARY KEY, %s)',
              string_agg(format('p%s text', g), ', ' ORDER BY g)) FROM generate_series(1, 20) g \gexec
SELECT crm_security.enable_audit('public.tap_wide20', NULL, (SELECT array_agg('p' || g) FROM generate_series(1, 20) g)) \g /dev/null
SELECT format('INSERT INTO public.tap_wide20 VALUES (1, %s)',
              string_agg(format('%L', 'wide secret ' || g), ', ' ORDER BY g)) FROM generate_series(1, 20) g \gexec
UPDATE public.tap_wide20 SET p7 = 'wide secret changed';
CREATE TABLE public.tap_ids AS
SELECT operation || (record_key->>'id') AS k, id FROM crm_security.audit_log WHERE table_name = 'public.tap_env';
GRANT SELECT ON public.tap_ids TO PUBLIC;
CREATE FUNCTION public.eid(text) RETURNS bigint LANGUAGE sql STABLE AS $$SELECT id FROM public.tap_ids WHERE k = $1$$;
CREATE FUNCTION public.img(text) RETURNS jsonb LANGUAGE sql STABLE
  AS $$SELECT coalesce(new_row, old_row) FROM crm_security.audit_log WHERE id = public.eid($1)$$;
-- The reference to a crm2 envelope: its key id, "~" and the first 8 characters of its bytes.
CREATE FUNCTION public.ref(env jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
  AS $$SELECT jsonb_build_object('enc', regexp_replace(env->>'enc', '^(crm2\.[0-9]+)\.(.{8}).*$', '\1~\2'))$$;

\ir include/privacy_moved.sql

SELECT plan(39);

-- crm2: one envelope per image.
SELECT is((SELECT format FROM public.tap_default), 'crm2', 'crm2 is the default format');
SELECT ok(public.img('INSERT1')->'name'->>'enc' ~ '^crm2\.[0-9]+\.[A-Za-z0-9_-]{60,}$',
          'crm2: the first personal member (in jsonb key order) holds the image''s envelope');
SELECT is(ARRAY[public.img('INSERT1')->'email', public.img('INSERT1')->'notes'],
          ARRAY[public.ref(public.img('INSERT1')->'name'), public.ref(public.img('INSERT1')->'name')],
          '... the other personal members refer to it: {"enc": "crm2.<key id>~<its first 8 characters>"}');
SELECT is((SELECT count(*) FROM crm_security.audit_log l WHERE table_name = 'public.tap_env'
              AND l::text ~* 'sealperson|ann\.seal|vegan|oldformat|cat\.old|cat\.new'), 0::bigint,
          'no personal value in clear, in either format');
SELECT is(crm_security.audit_personal_data(public.eid('INSERT1'))->'new_row',
          '{"id": 1, "tenant_id": "t1", "name": "Ann Sealperson", "email": "ann.seal@example.org", "phone": "555-1",
            "notes": {"diet": "vegan", "n": [1, 2]}, "plain": "x"}'::jsonb,
          'an auditor reads the image: strings and a nested jsonb value, each in its member');
SELECT is(ARRAY[public.img('INSERT2')->'email', public.img('INSERT2')->'notes'], ARRAY['null'::jsonb, 'null'::jsonb],
          'NULL personal values stay NULL, outside the envelope');
SELECT is(crm_security.audit_personal_data(public.eid('INSERT2'))->'new_row'->>'name', 'Ben Sealperson',
          'an image with one personal value: the envelope alone');
SELECT is(public.img('INSERT3'), '{"id": 3, "tenant_id": "t1", "name": null, "email": null, "phone": "555-3", "notes": null, "plain": "z"}'::jsonb,
          'an image without personal values has no envelope');

SELECT is((SELECT count(*) FROM crm_security.audit_log l WHERE table_name = 'public.tap_wide20' AND l::text ~ 'wide secret'),
          0::bigint, 'twenty personal columns: none in clear');
SELECT is((SELECT crm_security.audit_personal_data(id) FROM crm_security.audit_log
            WHERE table_name = 'public.tap_wide20' AND operation = 'UPDATE'),
          jsonb_build_object('old_row', (SELECT jsonb_object_agg('p' || g, 'wide secret ' || g) FROM generate_series(1, 20) g) || '{"id": 1}',
                             'new_row', (SELECT jsonb_object_agg('p' || g, 'wide secret ' || g) FROM generate_series(1, 20) g)
                                        || '{"id": 1, "p7": "wide secret changed"}',
                             'metadata', NULL),
          '... both images of an UPDATE read back, every member in its place');
SELECT is((SELECT count(*) FROM crm_security.audit_log l, jsonb_each(l.new_row) e(k, v)
            WHERE table_name = 'public.tap_wide20' AND operation = 'UPDATE' AND v ? 'enc'), 20::bigint,
          '... one envelope and nineteen references');

-- crm1: one envelope per value, still read.
SELECT is((SELECT count(*) FROM jsonb_each(public.img('INSERT4')) e(k, v)
            WHERE v->>'enc' ~ '^crm1\.[0-9]+\.[A-Za-z0-9_-]+$'), 2::bigint,
          'crm1: each personal value its own envelope');
SELECT is(crm_security.audit_personal_data(public.eid('INSERT4'))->'new_row'->>'email', 'cat.old@example.org',
          'a crm1 envelope is read');
SELECT is(crm_security.audit_personal_data(public.eid('UPDATE4')) #>> '{old_row,name}', 'Cat Oldformat',
          'a later write of the subject in crm2 (the default again), under the same key, reads');
SELECT cmp_ok((SELECT pg_column_size(new_row) FROM crm_security.audit_log WHERE id = public.eid('INSERT1')), '<',
              (SELECT pg_column_size(new_row) FROM crm_security.audit_log WHERE id = public.eid('INSERT5')) - 50,
              'a crm2 image is smaller than the same image in crm1 (one nonce and tag, not three)');
SELECT throws_ok($$SET crm_security.audit_envelope_format = crm3$$, '22023', NULL, 'an unknown format is refused');
SET ROLE tap_env_app;
SELECT throws_ok($$SET crm_security.audit_envelope_format = crm2$$, '42501', NULL,
                 'only a superuser chooses the format');
RESET ROLE;

-- Any part moved, removed or added: the image does not decrypt.
SELECT is(public.moved(format($$UPDATE crm_security.audit_log SET new_row = new_row || jsonb_build_object('name', new_row->'email', 'email', new_row->'name')
                                WHERE id = %s$$, public.eid('INSERT1')), public.eid('INSERT1')),
          'refused', 'the envelope moved to another personal member');
SELECT is(public.moved(format($$UPDATE crm_security.audit_log SET new_row = new_row || '{"email": "x"}'
                                WHERE id = %s$$, public.eid('INSERT1')), public.eid('INSERT1')),
          'refused', 'a reference replaced by a plain value');
SELECT is(public.moved(format($$UPDATE crm_security.audit_log SET new_row = new_row || jsonb_build_object('phone', new_row->'email')
                                WHERE id = %s$$, public.eid('INSERT1')), public.eid('INSERT1')),
          'refused', 'a reference added to a column that is not personal');
SELECT is(public.moved(format($$UPDATE crm_security.audit_log SET new_row = new_row || jsonb_build_object('plain', new_row->'name')
                                WHERE id = %s$$, public.eid('INSERT3')), public.eid('INSERT3')),
          'decrypted', '(control: an entry without personal values reads as it is)');
SELECT is(public.moved(format($$UPDATE crm_security.audit_log SET new_row = new_row || '{"name": "x"}'
                                WHERE id = %s$$, public.eid('INSERT1')), public.eid('INSERT1')),
          'refused', 'the envelope taken away, its references left');
SELECT is(public.moved(format($$UPDATE crm_security.audit_log d SET new_row = jsonb_set(d.new_row, '{name}', s.new_row->'name')
                                FROM crm_security.audit_log s WHERE d.id = %s AND s.id = %s$$,
                              public.eid('INSERT2'), public.eid('INSERT1')), public.eid('INSERT2')),
          'refused', 'an envelope moved to another entry');
SELECT is(public.moved(format($$UPDATE crm_security.audit_log SET new_row = jsonb_set(new_row, '{name}', old_row->'name')
                                WHERE id = %s$$, public.eid('UPDATE4')), public.eid('UPDATE4')),
          'refused', 'the envelope of old_row moved to new_row');
SELECT is(public.moved(format($$UPDATE crm_security.audit_log SET new_row = jsonb_set(new_row, '{name}', new_row->'email')
                                WHERE id = %s$$, public.eid('INSERT4')), public.eid('INSERT4')),
          'refused', 'a crm1 envelope moved to another column');
SELECT is(public.moved(format($$UPDATE crm_security.audit_log SET old_row = jsonb_set(old_row, '{phone}', new_row->'phone')
                                WHERE id = %s$$, public.eid('UPDATE4')), public.eid('UPDATE4')),
          'decrypted', '(control: the same copy of a plain member reads)');
SELECT is(public.moved(format($$UPDATE crm_security.audit_log SET old_row = jsonb_set(old_row, '{email}', new_row->'email')
                                WHERE id = %s$$, public.eid('UPDATE4')), public.eid('UPDATE4')),
          'refused', 'a reference copied from the other image of the entry (same key and member) names another envelope');

-- Hostile shapes in a column that is not personal, of an entry without personal values:
-- only a well-formed reference or envelope is taken for one.
CREATE FUNCTION public.shape_verdicts(shapes jsonb[]) RETURNS text[] LANGUAGE sql AS $$
  SELECT array_agg(public.moved(format('UPDATE crm_security.audit_log SET new_row = new_row || jsonb_build_object(''plain'', %L::jsonb) WHERE id = %s',
                                       sh, public.eid('INSERT3')), public.eid('INSERT3')) ORDER BY o)
    FROM unnest(shapes) WITH ORDINALITY u(sh, o) $$;
SELECT is(public.shape_verdicts(ARRAY[
            '{"enc": "crm2.99999999999999999999"}', '{"enc": "crm2."}', '{"enc": "crm2.5."}', '{"enc": "crm2.5.@@@@"}',
            '{"enc": "crm2.5~AAAAAAAA", "x": 1}', '{"enc": "crm2.-5"}', '{"enc": 5}', '{"enc": ["crm2.5~AAAAAAAA"]}', '{"enc": "crm3.5"}',
            '{"enc": "crm2.5"}', '{"enc": "crm2.5~AAAAAAA"}', '{"enc": "crm2.5~AAAAAAAAA"}', '{"enc": "crm1.5~AAAAAAAA"}',
            '{"enc": "crm2.5~AAAA+/=A"}', '{"enc": "crm2.5~AAAAAAé"}',
            '{"enc": "crm2.5~AAAAAAAA"}',
            jsonb_build_object('enc', (SELECT substring(public.img('INSERT1')->'name'->>'enc' FROM '^(crm2\.[0-9]+\.)')) || repeat('A', 1000000)),
            jsonb_build_object('enc', (SELECT substring(public.img('INSERT1')->'name'->>'enc' FROM '^(crm2\.[0-9]+\.)')) || repeat('A', 60))]::jsonb[]),
          ARRAY['decrypted', 'decrypted', 'decrypted', 'decrypted', 'decrypted', 'decrypted', 'decrypted', 'decrypted', 'decrypted',
                'decrypted', 'decrypted', 'decrypted', 'decrypted', 'decrypted', 'decrypted',
                'refused', 'refused', 'refused'],
          'malformed shapes (a reference without its characters, with 7 or 9, or with characters outside base64url) are plain values; a lone reference, a forged envelope (60 bytes, 1 MB) are refused');

-- log_event metadata: the named members sealed together.
SELECT ok(crm_security.log_event('export', 'contact', '2', 'success',
                                 '{"to": "ben.export@example.org", "cc": ["x@example.org"], "rows": 3}',
                                 subject => '2', personal_keys => ARRAY['to', 'cc']) > 0,
          'log_event with two personal members');
SELECT ok((SELECT metadata->'cc'->>'enc' ~ '^crm2\.[0-9]+\.' AND metadata->'to' = public.ref(metadata->'cc')
                  AND metadata->>'rows' = '3'
             FROM crm_security.audit_log WHERE operation = 'export'),
          '... one envelope (in "cc", first in key order), one reference, the rest plain');
SELECT is((SELECT crm_security.audit_personal_data(id)->'metadata' FROM crm_security.audit_log WHERE operation = 'export'),
          '{"to": "ben.export@example.org", "cc": ["x@example.org"], "rows": 3}'::jsonb,
          '... read back by an auditor');

SELECT crm_security.log_event('import', NULL, NULL, 'success', '{"rows": 2, "note": null}',
                              subject => '2', personal_keys => ARRAY['nope', 'note']) \g /dev/null
SELECT is((SELECT metadata FROM crm_security.audit_log WHERE operation = 'import'),
          '{"rows": 2, "note": null}'::jsonb,
          'personal keys naming no member, or a null one: nothing sealed, no envelope');

-- Finding and forgetting a subject's entries in both formats.
SET ROLE tap_env_auditor;
SELECT is((SELECT array_agg(new_row->>'email' ORDER BY entry_id) FROM crm_security.audit_subject_data('t1', '4')),
          ARRAY['cat.old@example.org', 'cat.new@example.org'], 'audit_subject_data finds crm1 and crm2 entries');
SELECT is((SELECT metadata FROM crm_security.audit_subject_data(NULL, '2')),
          '{"to": "ben.export@example.org", "cc": ["x@example.org"], "rows": 3}'::jsonb,
          '... and the event of a subject (no tenant), decrypted');
RESET ROLE;
SELECT is(crm_security.forget_subject('t1', '4'), 2::bigint, 'forget_subject counts the entries of both formats');
SELECT is(crm_security.audit_personal_data(public.eid('UPDATE4')),
          jsonb_build_object('old_row', '{"id": 4, "tenant_id": "t1", "name": {"erased": true}, "email": {"erased": true}, "phone": "555-4", "notes": null, "plain": "w"}'::jsonb,
                             'new_row', '{"id": 4, "tenant_id": "t1", "name": {"erased": true}, "email": {"erased": true}, "phone": "555-4", "notes": null, "plain": "w"}'::jsonb,
                             'metadata', NULL),
          'every sealed member of a forgotten subject reads {"erased": true}');
SELECT is(crm_security.forget_subject(NULL, '2'), 1::bigint, 'forgetting the subject of an event');
SELECT is((SELECT crm_security.audit_personal_data(id)->'metadata' FROM crm_security.audit_log WHERE operation = 'export'),
          '{"to": {"erased": true}, "cc": {"erased": true}, "rows": 3}'::jsonb, '... the event''s members are erased');
SELECT is(crm_security.audit_personal_data(public.eid('INSERT1'))->'new_row'->>'email', 'ann.seal@example.org',
          'another subject is intact');

SELECT * FROM finish();

DROP FUNCTION public.shape_verdicts(jsonb[]);
DROP FUNCTION public.moved(text, bigint);
DROP FUNCTION public.img(text);
DROP FUNCTION public.ref(jsonb);
DROP FUNCTION public.eid(text);
DROP TABLE public.tap_env, public.tap_ids, public.tap_default, public.tap_wide20;
DROP ROLE tap_env_app, tap_env_auditor;
