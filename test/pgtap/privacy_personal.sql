-- Personal data in the audit log (docs/privacy.md): personal columns are stored as
-- AES-256-GCM envelopes under a data key per (tenant, subject), hashed as ciphertext;
-- auditors read them through audit_personal_data(); forget_subject() destroys a key, and
-- the chain still verifies.  Statements commit one by one (sealing takes only committed
-- entries); the database is this file's own; the roles are dropped at the end.
SET client_min_messages = warning;

CREATE ROLE tap_priv_app;
CREATE ROLE tap_priv_auditor;
GRANT crm_security_auditor TO tap_priv_auditor;
CREATE TABLE public.tap_contacts (id int PRIMARY KEY, name text, email text, phone text, note text);
GRANT ALL ON public.tap_contacts TO tap_priv_app;
SELECT crm_security.enable_audit('public.tap_contacts', ARRAY['note'], ARRAY['name', 'email']) \g /dev/null
INSERT INTO public.tap_contacts VALUES
  (1, 'Alice Plaintextperson', 'alice.secret@example.com', '555-0101', 'n'),
  (2, 'Bob Plaintextperson', NULL, '555-0202', 'n');
UPDATE public.tap_contacts SET email = 'alice.changed@example.com' WHERE id = 1;
UPDATE public.tap_contacts SET phone = '555-0303' WHERE id = 1;
DELETE FROM public.tap_contacts WHERE id = 2;
CREATE TABLE public.tap_ids AS
SELECT operation || coalesce(record_key->>'id', '') AS k, id FROM crm_security.audit_log WHERE kind = 'row';
INSERT INTO public.tap_ids
SELECT 'UPDATE1b', max(id) FROM crm_security.audit_log WHERE operation = 'UPDATE';
UPDATE public.tap_ids SET k = 'UPDATE1a' WHERE k = 'UPDATE1' AND id = (SELECT min(id) FROM crm_security.audit_log WHERE operation = 'UPDATE');
DELETE FROM public.tap_ids WHERE k = 'UPDATE1';
GRANT SELECT ON public.tap_ids TO PUBLIC;
CREATE FUNCTION public.eid(text) RETURNS bigint LANGUAGE sql STABLE AS $$SELECT id FROM public.tap_ids WHERE k = $1$$;

\ir include/privacy_moved.sql

SELECT plan(54);

-- Stored encrypted, nothing in clear.
SELECT is((SELECT personal_columns FROM crm_security.audited_tables WHERE table_name = 'public.tap_contacts'::regclass),
          '{email,name}'::text[], 'audited_tables names the personal columns');
SELECT is((SELECT count(*) FROM crm_security.audit_log l
            WHERE l::text ~* 'plaintextperson|alice\.secret|alice\.changed'), 0::bigint,
          'no personal value appears anywhere in the text of audit_log');
SELECT is((SELECT count(*) FROM crm_security.audit_log l WHERE l::text ~ '555-0101'), 3::bigint,
          'a column that is not personal is stored in clear (INSERT, both images of the UPDATE of email)');
SELECT ok((SELECT new_row->'name' ? 'enc' AND new_row->'email' ? 'enc' AND new_row->>'phone' = '555-0101'
             FROM crm_security.audit_log WHERE id = public.eid('INSERT1')),
          'personal values are envelopes {"enc": ...}, other columns plain');
SELECT ok((SELECT (new_row->'name'->>'enc') ~ '^crm2\.[0-9]+\.' AND (new_row->'email'->>'enc') ~ '^crm2\.[0-9]+~'
             FROM crm_security.audit_log WHERE id = public.eid('INSERT1')),
          'an envelope names its format (crm2, the default: the envelope in name, a reference in email)');
SELECT is((SELECT new_row->'email' FROM crm_security.audit_log WHERE id = public.eid('INSERT2')),
          'null'::jsonb, 'a NULL personal value stays NULL, not encrypted');
SELECT isnt((SELECT old_row->'name' FROM crm_security.audit_log WHERE id = public.eid('UPDATE1a')),
            (SELECT new_row->'name' FROM crm_security.audit_log WHERE id = public.eid('UPDATE1a')),
            'every value has a fresh nonce: the same name encrypts differently in old_row and new_row');
SELECT is((SELECT changed_columns FROM crm_security.audit_log WHERE id = public.eid('UPDATE1a')),
          '{email}'::text[], 'changed_columns names a changed personal column');
SELECT is((SELECT changed_columns FROM crm_security.audit_log WHERE id = public.eid('UPDATE1b')),
          '{phone}'::text[], '... and not an unchanged one (compared before encryption)');
SELECT ok(NOT (SELECT old_row ? 'note' FROM crm_security.audit_log WHERE id = public.eid('UPDATE1b')),
          'excluded columns stay left out');
SELECT is((SELECT count(*) FROM crm_security.audit_subject_keys), 2::bigint,
          'one data key per subject (the primary key by default)');
SELECT is((SELECT count(*) FROM crm_security.audit_subject_keys k
            WHERE k::text ~* 'plaintextperson|alice\.'), 0::bigint, 'the key table holds nothing in clear');

-- Who reads.
SET ROLE tap_priv_auditor;
SELECT is(crm_security.audit_personal_data(public.eid('UPDATE1a')),
          '{"old_row": {"id": 1, "name": "Alice Plaintextperson", "email": "alice.secret@example.com", "phone": "555-0101"},
            "new_row": {"id": 1, "name": "Alice Plaintextperson", "email": "alice.changed@example.com", "phone": "555-0101"},
            "metadata": null}'::jsonb, 'an auditor reads both images decrypted');
SELECT is(crm_security.audit_personal_data(public.eid('DELETE2'))->'old_row'->>'name', 'Bob Plaintextperson',
          'an auditor reads a DELETE''s old image');
SELECT throws_ok('SELECT * FROM crm_security.audit_subject_keys', '42501', NULL,
                 'an auditor cannot read the data keys');
RESET ROLE;
SET ROLE tap_priv_app;
SELECT throws_ok(format('SELECT crm_security.audit_personal_data(%s)', public.eid('INSERT1')), '42501', NULL,
                 'a plain role cannot read personal values');
SELECT throws_ok('SELECT * FROM crm_security.audit_subject_keys', '42501', NULL, 'nor the data keys');
SELECT throws_ok($$SELECT crm_security.forget_subject(NULL, '1')$$, '42501', NULL, 'nor forget a subject');
SELECT throws_ok('SELECT * FROM crm_security.audit_changes', '42501', NULL, 'nor the compliance views');
RESET ROLE;
SELECT is(crm_security.audit_personal_data(NULL), NULL, 'audit_personal_data(NULL) is NULL');
SELECT is(crm_security.audit_personal_data(-1), NULL, 'an entry that does not exist reads as NULL');
SELECT is(crm_security.audit_personal_data(9223372036854775807), NULL, '... the largest id too');

-- A moved envelope does not decrypt.
SELECT is(public.moved(format($$UPDATE crm_security.audit_log d SET new_row = jsonb_set(d.new_row, '{name}', s.new_row->'name')
                                FROM crm_security.audit_log s WHERE d.id = %s AND s.id = %s$$,
                              public.eid('UPDATE1b'), public.eid('INSERT1')), public.eid('UPDATE1b')),
          'refused', 'an envelope moved to another entry of the same subject does not decrypt');
SELECT is(public.moved(format($$UPDATE crm_security.audit_log SET new_row = jsonb_set(new_row, '{name}', new_row->'email')
                                WHERE id = %s$$, public.eid('INSERT1')), public.eid('INSERT1')),
          'refused', 'an envelope moved to another column does not decrypt');
SELECT is(public.moved(format($$UPDATE crm_security.audit_log SET new_row = jsonb_set(new_row, '{name}', old_row->'name')
                                WHERE id = %s$$, public.eid('UPDATE1a')), public.eid('UPDATE1a')),
          'refused', 'an envelope moved from old_row to new_row does not decrypt');
SELECT is(public.moved(format($$UPDATE crm_security.audit_log
                                   SET new_row = jsonb_set(new_row, '{name,enc}', to_jsonb(overlay(new_row->'name'->>'enc' placing 'AAAA' from 30)))
                                WHERE id = %s$$, public.eid('INSERT1')), public.eid('INSERT1')),
          'refused', 'an altered envelope does not decrypt');

-- Forgetting a subject.
SELECT crm_security.seal_audit_log() \g /dev/null
INSERT INTO public.tap_ids SELECT 'digest', (crm_security.audit_digest()->>'block_id')::bigint;
CREATE TABLE public.tap_digest AS SELECT crm_security.audit_digest() AS d;
SELECT is(crm_security.forget_subject(NULL, '1'), 3::bigint, 'forget_subject returns how many entries held the subject''s values');
SELECT is((SELECT count(*) FROM crm_security.audit_subject_keys WHERE subject = '1'), 0::bigint, 'the data key is gone');
SELECT is(crm_security.audit_personal_data(public.eid('UPDATE1a')),
          '{"old_row": {"id": 1, "name": {"erased": true}, "email": {"erased": true}, "phone": "555-0101"},
            "new_row": {"id": 1, "name": {"erased": true}, "email": {"erased": true}, "phone": "555-0101"},
            "metadata": null}'::jsonb, 'erased values read as {"erased": true}, the rest stays');
SELECT is(crm_security.audit_personal_data(public.eid('INSERT2'))->'new_row'->>'name', 'Bob Plaintextperson',
          'another subject is intact');
SELECT is((SELECT resource_id || ' ' || resource_type || ' ' || (metadata->>'entries')
             FROM crm_security.audit_log WHERE operation = 'audit.forget'), '1 subject 3',
          'forgetting is an audit event naming the subject id');
SELECT is((SELECT count(*) FROM crm_security.audit_log l WHERE operation = 'audit.forget' AND l::text ~* 'alice|plaintext'),
          0::bigint, '... and nothing of their data');
SELECT cmp_ok(crm_security.seal_audit_log(), '>=', 1::bigint, 'sealing goes on after forgetting');
SELECT is((SELECT ok FROM crm_security.verify_audit_log((SELECT d FROM public.tap_digest))), true,
          'the chain verifies after forgetting, with the digest taken before');
SELECT is(crm_security.forget_subject(NULL, '1'), 0::bigint, 'forgetting again finds nothing');
SELECT is(crm_security.forget_subject('t9', 'nobody'), 0::bigint, 'an unknown subject: 0');
SELECT throws_ok($$SELECT crm_security.forget_subject(NULL, NULL)$$, '22023', NULL, 'the subject cannot be NULL');
SELECT throws_ok($$SELECT crm_security.forget_subject(NULL, '')$$, '22023', NULL, '... nor empty');
SELECT throws_ok($$SELECT crm_security.forget_subject(NULL, repeat('x', 100000))$$, '22023', NULL, '... nor huge');
-- Writing again after forgetting uses a new key, which cannot read what was erased.
INSERT INTO public.tap_contacts VALUES (1, 'Alice Again', NULL, NULL, NULL) ON CONFLICT (id) DO UPDATE SET name = 'Alice Again';
SELECT is((SELECT crm_security.audit_personal_data(max(id))->'new_row'->>'name' FROM crm_security.audit_log WHERE kind = 'row'),
          'Alice Again', 'a later write of the subject is readable under a new key');
SELECT is(crm_security.audit_personal_data(public.eid('INSERT1'))->'new_row'->'name', '{"erased": true}'::jsonb,
          '... and the erased values stay erased');

-- Bad input to enable_audit.
SELECT throws_ok($$SELECT crm_security.enable_audit('public.tap_contacts', NULL, ARRAY['nope'])$$, '42703', NULL,
                 'an unknown personal column is refused');
SELECT throws_ok($$SELECT crm_security.enable_audit('public.tap_contacts', NULL, ARRAY['id'])$$, '22023', NULL,
                 'the primary key cannot be personal');
SELECT throws_ok($$SELECT crm_security.enable_audit('public.tap_contacts', ARRAY['email'], ARRAY['email'])$$, '22023', NULL,
                 'a column cannot be both excluded and personal');
SELECT throws_ok($$SELECT crm_security.enable_audit('public.tap_contacts', NULL, ARRAY['name'], 'nope')$$, '42703', NULL,
                 'an unknown subject column is refused');
SELECT throws_ok($$SELECT crm_security.enable_audit('public.tap_contacts', NULL, ARRAY['name'], 'name')$$, '22023', NULL,
                 'the subject column cannot be personal');
SELECT throws_ok($$SELECT crm_security.enable_audit('public.tap_contacts', NULL, NULL, 'phone')$$, '22023', NULL,
                 'a subject column without personal columns is refused');
SELECT throws_ok($$SELECT crm_security.enable_audit('public.tap_contacts', NULL, ARRAY[NULL]::text[])$$, '22023', NULL,
                 'a NULL personal column name is refused');
SELECT throws_ok($$SELECT crm_security.enable_audit('public.tap_contacts', NULL, ARRAY[repeat('x', 100000)])$$, '42703', NULL,
                 'a huge personal column name is refused');

-- log_event: personal metadata for a subject.
SELECT is(crm_security.log_event('export', 'contact', '7', 'success', '{"to": "carol@example.org", "rows": 3}',
                                 subject => '7', personal_keys => ARRAY['to']) > 0, true, 'log_event takes a subject');
SELECT ok((SELECT metadata->'to' ? 'enc' AND metadata->>'rows' = '3' FROM crm_security.audit_log WHERE operation = 'export'),
          'the named metadata members are encrypted, the others plain');
SELECT is((SELECT crm_security.audit_personal_data(id)->'metadata' FROM crm_security.audit_log WHERE operation = 'export'),
          '{"to": "carol@example.org", "rows": 3}'::jsonb, 'an auditor reads the metadata decrypted');
SELECT throws_ok($$SELECT crm_security.log_event('x', NULL, NULL, 'success', '[1]', subject => '7')$$, '22023', NULL,
                 'personal metadata must be an object');
SELECT throws_ok($$SELECT crm_security.log_event('x', NULL, NULL, 'success', '{"a": 1}', NULL, ARRAY['a'])$$, '22023', NULL,
                 'personal keys need a subject');

SELECT * FROM finish();

DROP FUNCTION public.moved(text, bigint);
DROP FUNCTION public.eid(text);
DROP TABLE public.tap_contacts, public.tap_ids, public.tap_digest;
DROP ROLE tap_priv_app, tap_priv_auditor;
