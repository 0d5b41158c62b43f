-- The who/where columns follow every change within one transaction: the request id
-- setting, the current role, the claim context, the tenant claim's name, a role's name.
SET client_min_messages = warning;
BEGIN;
SELECT plan(9);

CREATE ROLE regress_aa_app;
CREATE TABLE public.aa_items (id int PRIMARY KEY, step text);
GRANT SELECT, INSERT ON public.aa_items TO regress_aa_app;
SELECT crm_security.enable_audit('public.aa_items') IS NULL AS enabled \g /dev/null
SELECT crm_security.add_jwt_key('aa_hs', 'HS256', 'aa-secret-0123456789-0123456789-abcdef') IS NOT NULL AS added \g /dev/null
CREATE FUNCTION pg_temp.tok(claims jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT crm_security.jwt_sign(jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600) || claims,
                                 'aa-secret-0123456789-0123456789-abcdef', 'HS256', '{"kid": "aa_hs"}')
$$;
CREATE TEMP TABLE aa_tok AS SELECT
  pg_temp.tok('{"sub": "u1", "tenant_id": "t1", "org": "o1"}') AS t1,
  pg_temp.tok('{"sub": "u2", "tenant_id": "t2", "org": "o2", "request_id": "from-token"}') AS t2;
GRANT SELECT ON aa_tok TO regress_aa_app;

INSERT INTO public.aa_items SELECT g, 'session' FROM generate_series(1, 3) g;
SET LOCAL crm_security.request_id = 'r-1';
INSERT INTO public.aa_items VALUES (4, 'request r-1');
SET LOCAL crm_security.request_id = 'r-2';
INSERT INTO public.aa_items VALUES (5, 'request r-2');
SET LOCAL ROLE regress_aa_app;
INSERT INTO public.aa_items VALUES (6, 'role');
SELECT crm_security.set_claim_context(t1) IS NOT NULL AS set FROM aa_tok \g /dev/null
INSERT INTO public.aa_items VALUES (7, 'token 1');
SELECT crm_security.set_claim_context(t2) IS NOT NULL AS set FROM aa_tok \g /dev/null
INSERT INTO public.aa_items SELECT g, 'token 2' FROM generate_series(8, 9) g;
SELECT crm_security.set_claim_context(t1) IS NOT NULL AS set FROM aa_tok \g /dev/null
INSERT INTO public.aa_items VALUES (10, 'token 1 again');
RESET ROLE;
SET LOCAL crm_security.tenant_claim = 'org';
INSERT INTO public.aa_items VALUES (11, 'tenant claim org');
RESET crm_security.tenant_claim;
SELECT crm_security.clear_claim_context() IS NULL AS cleared \g /dev/null
SET LOCAL ROLE regress_aa_app;
INSERT INTO public.aa_items VALUES (12, 'role again');
RESET ROLE;
ALTER ROLE regress_aa_app RENAME TO regress_aa_app_renamed;
SET LOCAL ROLE regress_aa_app_renamed;
INSERT INTO public.aa_items VALUES (13, 'renamed');
SELECT crm_security.log_event('renamed.event') IS NOT NULL AS logged \g /dev/null
RESET ROLE;
RESET crm_security.request_id;
INSERT INTO public.aa_items VALUES (14, 'no request id');

CREATE TEMP TABLE aa_log AS
  SELECT (new_row->>'id')::int AS item, operation, actor_type, actor_id, tenant_id, db_user, request_id, entry_hash,
         id AS entry_id
    FROM crm_security.audit_log WHERE table_name = 'public.aa_items' OR operation = 'renamed.event';

SELECT results_eq($$SELECT item, actor_type, actor_id, tenant_id, db_user, request_id FROM aa_log WHERE item <= 5 ORDER BY item$$,
  $$VALUES (1, 'db_user', (session_user::text COLLATE "default"), NULL::text, (current_user::text COLLATE "default"), NULL::text),
           (2, 'db_user', (session_user::text COLLATE "default"), NULL, (current_user::text COLLATE "default"), NULL),
           (3, 'db_user', (session_user::text COLLATE "default"), NULL, (current_user::text COLLATE "default"), NULL),
           (4, 'db_user', (session_user::text COLLATE "default"), NULL, (current_user::text COLLATE "default"), 'r-1'),
           (5, 'db_user', (session_user::text COLLATE "default"), NULL, (current_user::text COLLATE "default"), 'r-2')$$,
  'without a context: the session user, and each request id as it was set');
SELECT results_eq($$SELECT actor_type, actor_id, db_user, request_id FROM aa_log WHERE item = 6$$,
  $$VALUES ('db_user', (session_user::text COLLATE "default"), 'regress_aa_app', 'r-2')$$,
  'SET ROLE changes db_user, not the actor');
SELECT results_eq($$SELECT item, actor_type, actor_id, tenant_id, request_id FROM aa_log WHERE item BETWEEN 7 AND 10 ORDER BY item$$,
  $$VALUES (7, 'user', 'u1', 't1', 'r-2'),
           (8, 'user', 'u2', 't2', 'from-token'),
           (9, 'user', 'u2', 't2', 'from-token'),
           (10, 'user', 'u1', 't1', 'r-2')$$,
  'each claim context as it was set; the request id claim wins over the setting');
SELECT results_eq($$SELECT actor_id, tenant_id, db_user FROM aa_log WHERE item = 11$$,
  $$VALUES ('u1', 'o1', (current_user::text COLLATE "default"))$$,
  'the tenant claim setting names the recorded claim');
SELECT results_eq($$SELECT actor_type, tenant_id, db_user FROM aa_log WHERE item = 12$$,
  $$VALUES ('db_user', NULL::text, 'regress_aa_app')$$,
  'a cleared context: the session again');
SELECT results_eq($$SELECT db_user FROM aa_log WHERE item = 13 OR operation = 'renamed.event'$$,
  $$VALUES ('regress_aa_app_renamed'), ('regress_aa_app_renamed')$$,
  'a renamed role is recorded by its new name');
SELECT results_eq($$SELECT db_user, request_id FROM aa_log WHERE item = 14$$,
  $$VALUES ((current_user::text COLLATE "default"), NULL::text)$$,
  'a reset request id is no longer recorded');
SELECT is((SELECT count(*) FROM aa_log
            WHERE entry_hash IS DISTINCT FROM hmac(crm_security.audit_canonical_entry(entry_id), pg_read_binary_file('crm_security/audit_entry.key'), 'sha256')), 0::bigint,
  'every entry matches its hash');
SELECT is((SELECT count(*) FROM aa_log), 15::bigint, 'one entry per row and the event');

SELECT * FROM finish();
ROLLBACK;
