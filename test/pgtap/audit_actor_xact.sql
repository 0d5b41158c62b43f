-- The who/where columns of entries are kept from one transaction to the next while what
-- they come from stays the same.  Each transaction here changes one input (or changes
-- it back); the recorded values must follow every change.  Autocommit: every statement
-- outside BEGIN ... COMMIT is its own transaction.
SET client_min_messages = warning;
SELECT plan(7);
CREATE ROLE regress_ax_app;
CREATE TABLE public.ax_items (id int PRIMARY KEY, step text);
GRANT SELECT, INSERT ON public.ax_items TO regress_ax_app;
SELECT crm_security.enable_audit('public.ax_items') IS NULL AS enabled \g /dev/null
SELECT crm_security.add_jwt_key('ax_hs', 'HS256', 'ax-secret-0123456789-0123456789-abcdef') IS NOT NULL AS added \g /dev/null
CREATE TEMP TABLE ax_tok AS SELECT crm_security.jwt_sign(
  jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600, 'sub', 'ux', 'tenant_id', 'tx'),
  'ax-secret-0123456789-0123456789-abcdef', 'HS256', '{"kid": "ax_hs"}') AS t;
GRANT SELECT ON ax_tok TO regress_ax_app;

INSERT INTO public.ax_items VALUES (1, 'session');
BEGIN;
SELECT crm_security.set_claim_context(t) IS NOT NULL AS set FROM ax_tok \g /dev/null
INSERT INTO public.ax_items VALUES (2, 'token');
COMMIT;
INSERT INTO public.ax_items VALUES (3, 'session again');
BEGIN;
SELECT crm_security.set_claim_context(t) IS NOT NULL AS set FROM ax_tok \g /dev/null
INSERT INTO public.ax_items VALUES (4, 'token again');
COMMIT;
SET crm_security.request_id = 'session-request';
INSERT INTO public.ax_items VALUES (5, 'session request id');
RESET crm_security.request_id;
SET ROLE regress_ax_app;
INSERT INTO public.ax_items VALUES (6, 'role');
RESET ROLE;
ALTER ROLE regress_ax_app RENAME TO regress_ax_app_renamed;
SET ROLE regress_ax_app_renamed;
INSERT INTO public.ax_items VALUES (7, 'renamed');
RESET ROLE;
INSERT INTO public.ax_items VALUES (8, 'back');

CREATE TEMP TABLE ax_log AS
  SELECT (new_row->>'id')::int AS item, actor_type, actor_id, tenant_id, db_user, request_id, entry_hash, id AS entry_id
    FROM crm_security.audit_log WHERE table_name = 'public.ax_items';

SELECT results_eq($$SELECT item, actor_type, actor_id, tenant_id FROM ax_log WHERE item <= 4 ORDER BY item$$,
  $$VALUES (1, 'db_user', (session_user::text COLLATE "default"), NULL::text),
           (2, 'user', 'ux', 'tx'),
           (3, 'db_user', (session_user::text COLLATE "default"), NULL),
           (4, 'user', 'ux', 'tx')$$,
  'a verified context, then none, then the same one again, each in its own transaction');
SELECT results_eq($$SELECT request_id FROM ax_log WHERE item IN (4, 5, 6) ORDER BY item$$,
  $$VALUES (NULL::text), ('session-request'), (NULL)$$,
  'a session-level request id is recorded while set, and no longer once reset');
SELECT results_eq($$SELECT db_user FROM ax_log WHERE item IN (5, 6, 7, 8) ORDER BY item$$,
  $$VALUES ((current_user::text COLLATE "default")), ('regress_ax_app'), ('regress_ax_app_renamed'),
           ((current_user::text COLLATE "default"))$$,
  'the current role in each transaction, and a role renamed between transactions by its new name');
SELECT is((SELECT count(*) FROM ax_log
            WHERE entry_hash IS DISTINCT FROM hmac(crm_security.audit_canonical_entry(entry_id), pg_read_binary_file('crm_security/audit_entry.key'), 'sha256')), 0::bigint,
  'every entry matches its hash');
SELECT is((SELECT count(*) FROM ax_log), 8::bigint, 'one entry per row');

-- A failed transaction leaves the kept values usable.
BEGIN;
SELECT crm_security.set_claim_context(t) IS NOT NULL AS set FROM ax_tok \g /dev/null
INSERT INTO public.ax_items VALUES (9, 'rolled back');
ROLLBACK;
INSERT INTO public.ax_items VALUES (10, 'after rollback');
SELECT results_eq($$SELECT actor_type, actor_id FROM crm_security.audit_log
                     WHERE table_name = 'public.ax_items' AND new_row->>'id' IN ('9', '10')$$,
  $$VALUES ('db_user', (session_user::text COLLATE "default"))$$,
  'after a rolled-back transaction with a context, the next entry has the session user');
SELECT is((SELECT ok FROM crm_security.verify_audit_log()), true, 'the log verifies');

SELECT * FROM finish();
SELECT crm_security.disable_jwt_key('ax_hs') IS NOT NULL AS disabled \g /dev/null
DROP TABLE public.ax_items;
DROP TABLE ax_tok;
DROP ROLE regress_ax_app_renamed;
