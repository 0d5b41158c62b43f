-- Personal data in the audit log, and a data subject's erasure (crypto-shredding): the
-- entries stay, their personal values become unreadable, and the chain still verifies
-- (docs/privacy.md).
\echo
\echo '################################################################'
\echo '# Chapter 9. Personal data in the audit log, and its erasure'
\echo '#   Names and e-mail addresses in the audit log are encrypted under a key per person.'
\echo '#   An erasure request destroys that key: the entries stay, the proof still holds, and'
\echo '#   the personal values can no longer be read by anyone.'
\echo '################################################################'
\set QUIET on
\pset footer off

\echo
\echo '== 1. Acme''s customers: name and e-mail are personal data, the customer number is the subject =='
CREATE TABLE demo_customers (id int PRIMARY KEY, tenant_id text NOT NULL, customer_no text NOT NULL,
                             name text, email text, plan text);
SELECT crm_security.enable_audit('demo_customers', personal_columns => ARRAY['name', 'email'],
                                 subject_column => 'customer_no');
INSERT INTO demo_customers VALUES (1, 'acme', 'C-100', 'Jane Roe', 'jane@roe.example', 'basic'),
                                  (2, 'acme', 'C-200', 'John Doe', 'john@doe.example', 'pro');
UPDATE demo_customers SET plan = 'pro', email = 'jane@roe-consulting.example' WHERE id = 1;

\echo
\echo '== 2. In the log, the personal values are ciphertext; the other columns are plain =='
\echo '   (one envelope per row image, in name; email refers to it)'
SELECT id, operation, new_row->>'customer_no' AS customer_no, new_row->>'plan' AS plan,
       left(new_row->'name'->>'enc', 24) || '...' AS name_in_the_log,
       new_row->'email'->>'enc' AS email_in_the_log
  FROM crm_security.audit_log WHERE table_name = 'public.demo_customers' ORDER BY id;

\echo
\echo '== 3. An auditor (a role granted crm_security_auditor) reads them in clear =='
SELECT max(id) AS jane_entry FROM crm_security.audit_log
 WHERE table_name = 'public.demo_customers' AND new_row->>'customer_no' = 'C-100' \gset
SELECT crm_security.audit_personal_data(:jane_entry)->'new_row' AS jane_as_the_auditor_sees_it;

\echo
\echo '== 4. Jane asks what the log holds about her (GDPR article 15): every entry, decrypted =='
SELECT entry_id, operation, new_row->>'email' AS email, new_row->>'plan' AS plan
  FROM crm_security.audit_subject_data('acme', 'C-100') ORDER BY entry_id;

\echo
\echo '== 5. Jane asks to be forgotten: her key is destroyed =='
SELECT crm_security.forget_subject('acme', 'C-100') AS entries_affected;
SELECT count(*) AS entries_found_for_jane_now FROM crm_security.audit_subject_data('acme', 'C-100');
SELECT crm_security.audit_personal_data(:jane_entry)->'new_row' AS jane_after_erasure;
SELECT crm_security.audit_personal_data(max(id))->'new_row'->>'name' AS john_is_still_readable
  FROM crm_security.audit_log WHERE table_name = 'public.demo_customers' AND new_row->>'customer_no' = 'C-200';

\echo
\echo '== 6. The proof: seal what is new, keep the digest outside, verify the whole chain =='
SELECT crm_security.seal_audit_log() AS entries_sealed;
SELECT crm_security.audit_digest() AS digest \gset
SELECT ok, blocks_checked, entries_checked, detail FROM crm_security.verify_audit_log(:'digest') \gset proof_
\echo verify_audit_log: ok = :proof_ok, :proof_blocks_checked blocks, :proof_entries_checked entries: :proof_detail
-- the demo fails here unless the whole log verifies
SELECT CASE WHEN :'proof_ok' THEN 'the proof holds' ELSE 1 / 0 || '' END AS proof;

\echo
\echo 'The end: keys, tenants, context, isolation, permissions, API keys, webhooks, limits,'
\echo 'record access, audit and erasure, each enforced by the database, and a log that proves it.'
