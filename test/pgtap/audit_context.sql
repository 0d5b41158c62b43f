-- The audit log records the verified actor of the claim context, never a spoofed one.
BEGIN;
SELECT plan(10);

CREATE ROLE regress_ac_app;
CREATE TABLE public.ac_deals (id int PRIMARY KEY, tenant_id text, amount numeric);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.ac_deals TO regress_ac_app;
SELECT crm_security.enable_audit('public.ac_deals');
SELECT crm_security.add_jwt_key('ac_hs', 'HS256', 'ac-secret-0123456789-0123456789-abcdef');

CREATE FUNCTION pg_temp.tok(claims jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT crm_security.jwt_sign(jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600) || claims,
                                 'ac-secret-0123456789-0123456789-abcdef', 'HS256', '{"kid": "ac_hs"}')
$$;
CREATE TEMP TABLE ac_tok AS
  SELECT pg_temp.tok('{"sub": "user-7", "tenant_id": "tenant-7", "request_id": "req-77"}') AS t;
GRANT SELECT ON ac_tok TO regress_ac_app;

SET LOCAL ROLE regress_ac_app;
SELECT crm_security.set_claim_context(t) FROM ac_tok;
INSERT INTO public.ac_deals VALUES (1, 'tenant-7', 100);
-- a spoofing attempt in the same transaction changes nothing that is recorded
SELECT set_config('request.jwt.claims', '{"sub": "admin", "tenant_id": "tenant-0"}', true);
SELECT set_config('request.jwt.claim.sub', 'admin', true);
UPDATE public.ac_deals SET amount = 200 WHERE id = 1;
RESET ROLE;

SELECT results_eq(
    $$SELECT actor_type, actor_id, tenant_id, request_id, db_user, operation
        FROM crm_security.audit_log WHERE table_name = 'public.ac_deals' ORDER BY id$$,
    $$VALUES ('user', 'user-7', 'tenant-7', 'req-77', 'regress_ac_app', 'INSERT'),
             ('user', 'user-7', 'tenant-7', 'req-77', 'regress_ac_app', 'UPDATE')$$,
    'audited changes carry the verified actor, tenant and request id, not the spoofed settings');
SELECT is((SELECT changed_columns FROM crm_security.audit_log
            WHERE table_name = 'public.ac_deals' AND operation = 'UPDATE'),
          ARRAY['amount'], 'the update records its changed column');

-- an application event in the same context
SELECT ok(crm_security.log_event('export', 'deal', '1') > 0, 'log_event returns the entry id');
SELECT results_eq(
    $$SELECT actor_type, actor_id, tenant_id FROM crm_security.audit_log WHERE operation = 'export'$$,
    $$VALUES ('user', 'user-7', 'tenant-7')$$,
    'an application event carries the verified actor');

-- without a context the actor is the session user
SELECT crm_security.clear_claim_context();
SET LOCAL ROLE regress_ac_app;
DELETE FROM public.ac_deals WHERE id = 1;
RESET ROLE;
SELECT results_eq(
    $$SELECT actor_type, tenant_id IS NULL FROM crm_security.audit_log
       WHERE table_name = 'public.ac_deals' AND operation = 'DELETE'$$,
    $$VALUES ('db_user', true)$$,
    'without a context the entry names the database user and no tenant');

-- a forged token neither sets a context nor reaches the log
SELECT throws_ok(
    format('SELECT crm_security.set_claim_context(%L)',
           crm_security.jwt_sign('{"sub": "mallory", "tenant_id": "tenant-7"}', 'a-guessed-secret-0123456789-0123456789', 'HS256', '{"kid": "ac_hs"}')),
    '28000', NULL, 'a forged token is refused');
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE actor_id = 'mallory'), 0::bigint,
          'nothing was recorded for the forged identity');

-- the chain still verifies once the entries are sealed
SELECT crm_security.seal_audit_log();
SELECT is((SELECT ok FROM crm_security.verify_audit_log()), true, 'the log verifies');
SELECT throws_ok($$UPDATE crm_security.audit_log SET actor_id = 'someone-else' WHERE actor_id = 'user-7'$$,
                 NULL, NULL, 'entries cannot be rewritten to another actor');
SELECT throws_ok($$DELETE FROM crm_security.audit_log WHERE actor_id = 'user-7'$$,
                 NULL, NULL, 'entries cannot be deleted');

SELECT * FROM finish();
ROLLBACK;
