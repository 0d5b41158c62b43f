-- Trust mode (crm_security.trust_request_jwt_claims): request.jwt.claims is the context of
-- the transaction that sets it and of no later one.  A session-level SET (or
-- set_config(..., false)) is erased at commit like crm_security.token, so behind a
-- transaction-pooling pooler the next client never inherits it; and a value left by an
-- earlier transaction (set while trust mode was off, say) is never a context, in the leader
-- or in parallel workers.  (docs/security.md, finding 10.)
-- Not wrapped in one transaction, on purpose: the role is dropped at the end.
DO $$ BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'regress_trust_user') THEN
        EXECUTE 'DROP OWNED BY regress_trust_user';
        EXECUTE 'DROP ROLE regress_trust_user';
    END IF;
END $$;
SELECT plan(26);
CREATE ROLE regress_trust_user;
\ir include/tap_state.sql
SELECT pg_temp.grant_tap_state('regress_trust_user');

SET crm_security.trust_request_jwt_claims = on;
SELECT is(crm_security.tenant_id(), NULL, 'trust mode on, nothing set: no context');

-- PostgREST's way: set_config(..., true) in the transaction.
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "u-pgrst", "tenant_id": "t-pgrst"}', true) IS NOT NULL AS x \gset
SELECT is(crm_security.tenant_id(), 't-pgrst', 'set_config(..., true) is the context of its transaction');
COMMIT;
SELECT is(crm_security.tenant_id(), NULL, '... and ends with it');

-- A careless client: plain SET, at session level, in a transaction.
BEGIN;
SET request.jwt.claims = '{"sub": "u-prev", "tenant_id": "t-prev"}';
SELECT is(crm_security.tenant_id(), 't-prev', 'a session-level SET is the context of its own transaction');
COMMIT;
-- The next client on the same server connection.
SELECT is(crm_security.tenant_id(), NULL, 'the next transaction does not inherit a session-level SET');
SELECT is(crm_security.user_id(), NULL, '... user_id() neither');
SELECT is(current_setting('request.jwt.claims', true), '', '... the setting is erased at commit');

-- SET outside a transaction block: a transaction of its own.
SET request.jwt.claims = '{"sub": "u-prev2", "tenant_id": "t-prev2"}';
SELECT is(crm_security.tenant_id(), NULL, 'a SET outside a transaction block ends with its own statement');
SELECT set_config('request.jwt.claims', '{"sub": "u-prev3", "tenant_id": "t-prev3"}', false) IS NOT NULL AS x \gset
SELECT is(crm_security.tenant_id(), NULL, 'set_config(..., false) ends with its statement too');

-- A session-level SET under a local one.
BEGIN;
SET request.jwt.claims = '{"sub": "u-prev4", "tenant_id": "t-prev4"}';
SET LOCAL request.jwt.claims = '{"sub": "u-local", "tenant_id": "t-local"}';
SELECT is(crm_security.tenant_id(), 't-local', 'SET LOCAL over a session-level SET');
COMMIT;
SELECT is(crm_security.tenant_id(), NULL, 'the session-level value masked by the local one does not come back');
SELECT is(current_setting('request.jwt.claims', true), '', '... the setting is empty');

-- Rolled back.
BEGIN;
SET request.jwt.claims = '{"sub": "u-rb", "tenant_id": "t-rb"}';
ROLLBACK;
SELECT is(crm_security.tenant_id(), NULL, 'a session-level SET rolled back is gone');

-- The application role behind a pooler is not superuser.
SET ROLE regress_trust_user;
BEGIN;
SET request.jwt.claims = '{"sub": "u-app", "tenant_id": "t-app"}';
SELECT is(crm_security.tenant_id(), 't-app', 'a non-superuser: a session-level SET is the context of its transaction');
COMMIT;
SELECT is(crm_security.tenant_id(), NULL, 'a non-superuser: not in the next transaction');
SELECT is(current_setting('request.jwt.claims', true), '', '... erased');
RESET ROLE;

-- A value left while trust mode was off (nothing erases it then: the extension does not
-- read it), and trust mode turned on later for one transaction.
RESET crm_security.trust_request_jwt_claims;
SET request.jwt.claims = '{"sub": "u-stale", "tenant_id": "t-stale"}';
SELECT is(current_setting('request.jwt.claims', true), '{"sub": "u-stale", "tenant_id": "t-stale"}',
          'with trust mode off, a session-level value stays (it is not the extension''s)');
SELECT is(crm_security.tenant_id(), NULL, '... and is no context');
BEGIN;
SET LOCAL crm_security.trust_request_jwt_claims = on;
SELECT is(crm_security.tenant_id(), NULL, 'trust mode turned on later: a value left by an earlier transaction is no context');
SELECT is(crm_security.claims(), NULL, '... claims() neither');
-- ... nor in parallel workers, which see the leader's settings without their history.
CREATE TABLE regress_trust_rows AS SELECT g AS id FROM generate_series(1, 100000) AS g;
ANALYZE regress_trust_rows;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
\ir include/explain.sql
SELECT cmp_ok((jsonb_path_query_first(pg_temp.explain('SELECT count(*) FROM regress_trust_rows WHERE crm_security.tenant_id() IS NOT NULL'),
                                      'strict $.**."Workers Launched"'))::int, '>=', 1, 'parallel workers are launched');
SELECT is((SELECT count(*) FROM regress_trust_rows WHERE crm_security.tenant_id() = 't-stale'), 0::bigint,
          'parallel workers do not read the stale value either');
SET LOCAL request.jwt.claims = '{"sub": "u-now", "tenant_id": "t-now"}';
SELECT is(crm_security.tenant_id(), 't-now', 'a value set in this transaction is the context');
SELECT is((SELECT count(*) FROM regress_trust_rows WHERE crm_security.tenant_id() = 't-now'), 100000::bigint,
          '... in parallel workers too');
DROP TABLE regress_trust_rows;
COMMIT;
SELECT is(current_setting('request.jwt.claims', true), '', 'the commit of a transaction in trust mode erases the stale value');

-- Trust mode off: the setting is left alone (Supabase's auth.*() may read it).
SET request.jwt.claims = '{"sub": "u-off"}';
SELECT is(current_setting('request.jwt.claims', true), '{"sub": "u-off"}', 'trust mode off: a session-level value is not touched');
RESET request.jwt.claims;

SELECT * FROM finish();
DROP OWNED BY regress_trust_user;
DROP ROLE regress_trust_user;
