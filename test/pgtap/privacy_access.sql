-- A request for access (GDPR article 15, docs/privacy.md): audit_subject_data(tenant,
-- subject) gives an auditor every entry that holds personal values of the subject, those
-- values decrypted, another subject's values in the same entry masked; nothing once the
-- subject is forgotten; refusals for other roles and for bad arguments.  Statements
-- commit one by one; the database is this file's own; the roles are dropped at the end.
SET client_min_messages = warning;

CREATE ROLE tap_acc_auditor;
CREATE ROLE tap_acc_user;
GRANT crm_security_auditor TO tap_acc_auditor;
CREATE TABLE public.acc_people (tenant_id text, id int, owner_email text, name text, email text, note text,
                                PRIMARY KEY (tenant_id, id));
CREATE TABLE public.acc_deals (id int PRIMARY KEY, contact text, amount int, contact_email text);
SELECT crm_security.enable_audit('public.acc_people', NULL, ARRAY['name', 'email']) \g /dev/null
SELECT crm_security.enable_audit('public.acc_deals', NULL, ARRAY['contact_email'], 'contact') \g /dev/null
INSERT INTO public.acc_people VALUES
  ('t1', 1, 'o@x', 'Ada Accessrequest', 'ada@example.org', 'n'),
  ('t1', 2, 'o@x', 'Ben Other', 'ben@example.org', 'n'),
  ('t2', 1, 'o@x', 'Ada In Tenant Two', 'ada2@example.org', 'n');
UPDATE public.acc_people SET email = 'ada.new@example.org' WHERE tenant_id = 't1' AND id = 1;
-- Deals name their contact: the subject column.  The last UPDATE moves a deal from one
-- contact to another: its old image is ben's, its new one ada's.
INSERT INTO public.acc_deals VALUES (10, 'ada', 100, 'ada@example.org'), (11, 'ben', 200, 'ben@example.org');
UPDATE public.acc_deals SET contact = 'ada', contact_email = 'ada@example.org' WHERE id = 11;
SELECT crm_security.log_event('export', 'contact', 'ada', 'ok', '{"to": "ada@example.org", "rows": 3}', 'ada', ARRAY['to']) \g /dev/null

SELECT plan(18);

SET ROLE tap_acc_auditor;
-- The subject of a row of acc_people is its primary key, as record_key's text.
SELECT is((SELECT count(*) FROM crm_security.audit_subject_data('t1', '{"id": 1, "tenant_id": "t1"}')), 2::bigint,
          'the contact t1/1: its INSERT and its UPDATE');
SELECT is((SELECT new_row->>'email' FROM crm_security.audit_subject_data('t1', '{"id": 1, "tenant_id": "t1"}') WHERE operation = 'UPDATE'),
          'ada.new@example.org', '... decrypted');
SELECT is((SELECT old_row->>'name' || ' / ' || (old_row->>'email') FROM crm_security.audit_subject_data('t1', '{"id": 1, "tenant_id": "t1"}') WHERE operation = 'UPDATE'),
          'Ada Accessrequest / ada@example.org', '... both images');
SELECT is((SELECT string_agg(DISTINCT table_name, ',') FROM crm_security.audit_subject_data('t1', '{"id": 1, "tenant_id": "t1"}')),
          'public.acc_people', '... of its table only');
SELECT is((SELECT count(*) FROM crm_security.audit_subject_data('t2', '{"id": 1, "tenant_id": "t2"}')), 1::bigint,
          'the same key in another tenant is another subject');
SELECT is((SELECT string_agg(kind || ':' || coalesce(operation, ''), ',' ORDER BY entry_id) FROM crm_security.audit_subject_data(NULL, 'ada')),
          'row:INSERT,row:UPDATE,event:export', 'the subject ada of the deals (no tenant): her deal''s INSERT, the UPDATE that moved a deal to her, the event');
SELECT is((SELECT old_row->'contact_email' FROM crm_security.audit_subject_data(NULL, 'ada') WHERE operation = 'UPDATE'),
          '{"other_subject": true}'::jsonb, '... where the old image is another subject''s, its value is masked');
SELECT is((SELECT new_row->>'contact_email' FROM crm_security.audit_subject_data(NULL, 'ada') WHERE operation = 'UPDATE'),
          'ada@example.org', '... and her own is decrypted');
SELECT is((SELECT metadata->>'to' FROM crm_security.audit_subject_data(NULL, 'ada') WHERE kind = 'event'),
          'ada@example.org', 'an event''s personal metadata is decrypted too');
SELECT is((SELECT count(*) FROM crm_security.audit_subject_data(NULL, 'nobody')), 0::bigint,
          'a subject never written: no rows');
RESET ROLE;

-- Forgotten: nothing left to find.
SELECT crm_security.forget_subject(NULL, 'ben') \g /dev/null
SET ROLE tap_acc_auditor;
SELECT is((SELECT count(*) FROM crm_security.audit_subject_data(NULL, 'ben')), 0::bigint,
          'a forgotten subject: no rows');
SELECT is((SELECT old_row->'contact_email' FROM crm_security.audit_subject_data(NULL, 'ada') WHERE operation = 'UPDATE'),
          '{"other_subject": true}'::jsonb, '... and another subject''s entries are unchanged');
RESET ROLE;

-- Refusals.
SET ROLE tap_acc_user;
SELECT throws_ok($$SELECT * FROM crm_security.audit_subject_data(NULL, 'ada')$$, '42501', NULL,
                 'a role that is not an auditor is refused');
RESET ROLE;
SET ROLE tap_acc_auditor;
SELECT throws_ok($$SELECT * FROM crm_security.audit_subject_data('t1', NULL)$$, '22023', 'data subject id cannot be null', 'a NULL subject');
SELECT throws_ok($$SELECT * FROM crm_security.audit_subject_data('t1', '')$$, '22023', 'data subject id cannot be empty', 'an empty subject');
SELECT throws_ok($$SELECT * FROM crm_security.audit_subject_data('t1', repeat('s', 1025))$$, '22023', 'data subject id is too long', 'a subject over 1,024 bytes');
SELECT throws_ok($$SELECT * FROM crm_security.audit_subject_data(repeat('t', 1000000), 'ada')$$, '22023', 'tenant id is too long', 'a tenant of 1 MB');
RESET ROLE;
-- A write whose tenant is longer than a key can be made for: the same refusal, not an error
-- of the key table's index.
SELECT throws_ok($$INSERT INTO public.acc_people VALUES (repeat('t', 2000), 1, 'o@x', 'A', 'a@x', 'n')$$,
                 '22023', 'tenant id is too long', 'a row of a 2,000-byte tenant with personal columns is refused with 22023');

SELECT * FROM finish();

DROP TABLE public.acc_people, public.acc_deals;
DROP ROLE tap_acc_auditor, tap_acc_user;
