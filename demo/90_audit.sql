-- Audit log: every change recorded with its actor, nobody can rewrite history, and a
-- superuser who goes around the protection is caught by verification.
\echo
\echo '################################################################'
\echo '# Chapter 8. The audit log and its proof'
\echo '#   Every change is recorded with the verified actor, chained by hashes and sealed. Nobody'
\echo '#   may rewrite it; a superuser who goes around the protection is caught by verification.'
\echo '################################################################'
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS crm_security;

\echo
\echo == Audit a table; the password hash is never stored in the log
CREATE TABLE demo_contacts (id int PRIMARY KEY, name text, email text, password_hash text);
CREATE ROLE demo_sales;
GRANT SELECT, INSERT, UPDATE, DELETE ON demo_contacts TO demo_sales;
SELECT crm_security.enable_audit('demo_contacts', ARRAY['password_hash']);

\echo
\echo == Changes made by the application role under a verified token (the identity provider signed it)
SELECT crm_security.add_jwt_key('audit-demo', 'HS256', 'audit-demo-secret-0123456789-0123456789');
SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'grace@acme.example', 'tenant_id', 'acme',
                                                'exp', extract(epoch FROM now() + interval '10 minutes')::bigint),
                             'audit-demo-secret-0123456789-0123456789', 'HS256', '{"kid": "audit-demo"}') AS token \gset
SET ROLE demo_sales;
BEGIN;
SELECT crm_security.set_claim_context(:'token') ->> 'sub' AS verified_user;
SET LOCAL crm_security.request_id = 'req-7f3a';
-- a spoofing attempt: the log keeps the verified identity
SELECT set_config('request.jwt.claims', '{"sub": "someone-else"}', true) IS NOT NULL AS spoof_attempted;
INSERT INTO demo_contacts VALUES (1, 'Ada Lovelace', 'ada@example.com', 'x1'), (2, 'Alan Turing', 'alan@example.com', 'x2');
UPDATE demo_contacts SET email = 'ada@analytical.engine', password_hash = 'x9' WHERE id = 1;
DELETE FROM demo_contacts WHERE id = 2;
COMMIT;
SELECT crm_security.log_event('export', 'report', 'contacts.csv', 'denied', '{"reason": "missing permission"}') AS event_id;
RESET ROLE;

SELECT id, operation, record_key, changed_columns, actor_type, actor_id, tenant_id, db_user, request_id
  FROM crm_security.audit_changes WHERE table_name = 'public.demo_contacts' ORDER BY id;
SELECT old_row, new_row FROM crm_security.audit_changes WHERE operation = 'UPDATE';
SELECT action, resource_id, result, denied, actor_id FROM crm_security.audit_access_events WHERE action = 'export';

\echo
\echo == Seal the committed entries into the hash chain and keep the digest outside
SELECT crm_security.seal_audit_log() AS entries_sealed;
SELECT crm_security.audit_digest() AS digest \gset
\echo digest: :digest
SELECT ok, blocks_checked, entries_checked, detail FROM crm_security.verify_audit_log(:'digest');

\echo
\echo == Nobody may rewrite the log, not even a superuser, not even in replica mode
SELECT demo_refused($q$DELETE FROM crm_security.audit_log WHERE actor_id = current_user$q$) AS delete_entries;
SET session_replication_role = replica;
SELECT demo_refused($q$UPDATE crm_security.audit_log SET actor_id = 'someone else'$q$) AS update_in_replica_mode;
RESET session_replication_role;
SELECT demo_refused($q$TRUNCATE crm_security.audit_log$q$) AS truncate_log;

\echo
\echo == A superuser disables the protection and quietly rewrites an entry ...
-- (the demo keeps the original, to put it back at the end)
CREATE TEMP TABLE demo_original AS
  SELECT id, new_row, entry_hash FROM crm_security.audit_log
   WHERE operation = 'UPDATE' AND table_name = 'public.demo_contacts';
ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
UPDATE crm_security.audit_log SET new_row = new_row || '{"email": "nothing-to-see@example.com"}'
 WHERE operation = 'UPDATE' AND table_name = 'public.demo_contacts';
ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only_rows;

\echo == ... and verification names the block and the entry
SELECT ok, first_bad_block, detail FROM crm_security.verify_audit_log(:'digest');

\echo == ... even after recomputing the entry hash
ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
UPDATE crm_security.audit_log SET entry_hash = pg_catalog.sha256(crm_security.audit_canonical_entry(id))
 WHERE operation = 'UPDATE' AND table_name = 'public.demo_contacts';
ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only_rows;
SELECT ok, first_bad_block, detail FROM crm_security.verify_audit_log(:'digest');

\echo '== (entry hashes are keyed with the server''s entry key, so a recomputed plain SHA-256 does not'
\echo '== match; only the original entry, put back exactly, verifies again)'
ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
UPDATE crm_security.audit_log a SET new_row = o.new_row, entry_hash = o.entry_hash
  FROM demo_original o WHERE a.id = o.id;
ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only_rows;
DROP TABLE demo_original;
SELECT ok, detail FROM crm_security.verify_audit_log(:'digest') \gset verify_
\echo verified: :verify_ok (:verify_detail)
-- the demo fails here unless the restored log verifies
SELECT CASE WHEN :'verify_ok' THEN 'the log verifies again' ELSE 1 / 0 || '' END AS restored;

\echo
\echo == Export for an auditor: CSV and JSON lines
COPY (SELECT logged_at, table_name, operation, record_key, changed_columns, actor_id
        FROM crm_security.audit_changes ORDER BY id)
  TO STDOUT WITH (FORMAT csv, HEADER);
COPY (SELECT pg_catalog.row_to_json(e) FROM crm_security.audit_access_events e ORDER BY id)
  TO STDOUT WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
