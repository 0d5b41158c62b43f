-- Personal data in the audit log: subjects by column and by tenant, values of other types,
-- 1 MB values, and a subject with thousands of entries (docs/privacy.md).  Statements
-- commit one by one; the database is this file's own.
SET client_min_messages = warning;

-- Orders of customers, per tenant: the subject is the customer, the tenant the row's
-- tenant_id column.
CREATE TABLE public.tap_orders (id int PRIMARY KEY, tenant_id text NOT NULL, customer text,
                                address text, details jsonb, amount numeric, secret text);
SELECT crm_security.enable_audit('public.tap_orders', ARRAY['secret'], ARRAY['address', 'details', 'amount'], 'customer') \g /dev/null
INSERT INTO public.tap_orders
SELECT g, 't' || (g % 2), 'c' || (g % 3), 'Street ' || g || ' Zzyzx', jsonb_build_object('gift', 'Zzyzx wrap ' || g, 'n', g), g * 1.5, 's'
  FROM generate_series(1, 3000) g;
INSERT INTO public.tap_orders VALUES (5000, 't1', NULL, 'Nullcustomer Zzyzx', NULL, NULL, NULL);

-- A 1 MB personal value.
CREATE TABLE public.tap_big (id int PRIMARY KEY, body text);
SELECT crm_security.enable_audit('public.tap_big', NULL, ARRAY['body']) \g /dev/null
INSERT INTO public.tap_big VALUES (1, repeat('Qx', 524288));

SELECT plan(17);

SELECT is((SELECT subject_column FROM crm_security.audited_tables WHERE table_name = 'public.tap_orders'::regclass),
          'customer'::name, 'audited_tables names the subject column');
SELECT is((SELECT count(*) FROM crm_security.audit_subject_keys WHERE subject LIKE 'c_'), 6::bigint,
          'one key per (tenant, subject): 3 customers in 2 tenants, for 3000 rows');
SELECT is((SELECT count(*) FROM crm_security.audit_subject_keys WHERE tenant_id = 't1' AND subject = 'c1'), 1::bigint,
          'the tenant of a key is the row''s tenant_id column');
SELECT is((SELECT count(*) FROM crm_security.audit_subject_keys WHERE tenant_id = 't1' AND subject = '5000'), 1::bigint,
          'a row whose subject column is NULL falls back to its primary key');
SELECT is((SELECT count(*) FROM crm_security.audit_log l WHERE kind = 'row' AND l::text LIKE '%Zzyzx%'), 0::bigint,
          'no personal value in clear, jsonb values included');
SELECT is((SELECT crm_security.audit_personal_data(id)->'new_row' FROM crm_security.audit_log
            WHERE kind = 'row' AND record_key->>'id' = '7'),
          jsonb_build_object('id', 7, 'tenant_id', 't1', 'customer', 'c1', 'address', 'Street 7 Zzyzx',
                             'details', jsonb_build_object('gift', 'Zzyzx wrap 7', 'n', 7), 'amount', 10.5),
          'values of every type read back as they were (text, jsonb, numeric)');
-- The 1 MB value.
SELECT is((SELECT count(*) FROM crm_security.audit_log l WHERE table_name = 'public.tap_big' AND l::text LIKE '%QxQxQxQx%'),
          0::bigint, 'a 1 MB value is stored encrypted');
SELECT is((SELECT length(crm_security.audit_personal_data(id)->'new_row'->>'body') FROM crm_security.audit_log
            WHERE table_name = 'public.tap_big' AND operation = 'INSERT'), 1048576, '... and reads back whole');

-- Thousands of entries for one subject.
UPDATE public.tap_orders SET address = address || ' (moved)' WHERE customer = 'c1' AND tenant_id = 't1';
SELECT crm_security.seal_audit_log() \g /dev/null
CREATE TABLE public.tap_digest AS SELECT crm_security.audit_digest() AS d;
SELECT is(crm_security.forget_subject('t1', 'c1'),
          (SELECT count(*) FROM crm_security.audit_log WHERE kind = 'row' AND new_row->>'customer' = 'c1'
              AND new_row->>'tenant_id' = 't1'),
          'forgetting a subject with hundreds of entries counts them all');
SELECT is((SELECT count(*) FILTER (WHERE crm_security.audit_personal_data(id)->'new_row'->'address' = '{"erased": true}')
             FROM crm_security.audit_log WHERE kind = 'row' AND new_row->>'customer' = 'c1' AND new_row->>'tenant_id' = 't1'),
          (SELECT count(*) FROM crm_security.audit_log WHERE kind = 'row' AND new_row->>'customer' = 'c1' AND new_row->>'tenant_id' = 't1'),
          'every one of them is erased');
SELECT is((SELECT crm_security.audit_personal_data(id)->'new_row'->>'address' FROM crm_security.audit_log
            WHERE kind = 'row' AND operation = 'INSERT' AND record_key->>'id' = '4'),
          'Street 4 Zzyzx', 'the same customer in another tenant is intact');
SELECT is((SELECT crm_security.audit_personal_data(id)->'new_row'->>'address' FROM crm_security.audit_log
            WHERE kind = 'row' AND operation = 'INSERT' AND record_key->>'id' = '2'),
          'Street 2 Zzyzx', 'another customer of the tenant is intact');
SELECT cmp_ok(crm_security.seal_audit_log(), '>=', 1::bigint, 'sealing goes on');
SELECT is((SELECT ok FROM crm_security.verify_audit_log((SELECT d FROM public.tap_digest))), true,
          'the chain verifies with the digest taken before forgetting');
SELECT is((SELECT metadata->>'subject_tenant_id' FROM crm_security.audit_log WHERE operation = 'audit.forget'), 't1',
          'the forget event names the tenant of the subject');

-- Concurrent forget in another transaction: a key cached by a transaction is not reused
-- after it ends (the cache is per transaction).
BEGIN;
INSERT INTO public.tap_orders VALUES (6000, 't0', 'c0', 'Cached Zzyzx', NULL, NULL, NULL);
SELECT crm_security.forget_subject('t0', 'c0') \g /dev/null
INSERT INTO public.tap_orders VALUES (6001, 't0', 'c0', 'After Zzyzx', NULL, NULL, NULL);
COMMIT;
SELECT is((SELECT crm_security.audit_personal_data(id)->'new_row'->>'address' FROM crm_security.audit_log
            WHERE kind = 'row' AND record_key->>'id' = '6001'), 'After Zzyzx',
          'a write after forget_subject in the same transaction uses a new key');
SELECT is((SELECT crm_security.audit_personal_data(id)->'new_row'->'address' FROM crm_security.audit_log
            WHERE kind = 'row' AND record_key->>'id' = '6000'), '{"erased": true}'::jsonb,
          '... and the one before it is erased');

SELECT * FROM finish();

DROP TABLE public.tap_orders, public.tap_big, public.tap_digest;
